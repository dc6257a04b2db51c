//! Pictures of a simulated schedule: an SVG Gantt chart (one row per rank, F/I/W/B in their own
//! colours, micro-batch numbers in the boxes, idle time left as the grey track behind them) and
//! Chrome trace events that Perfetto and `chrome://tracing` open.

use std::fmt::Write;

use crate::action::ActionKind as K;
use crate::simulate::Simulation;

const WIDTH: f64 = 1000.0;
const LEFT: f64 = 70.0;
const ROW: f64 = 28.0;
const TOP: f64 = 44.0;

fn colour(kind: K) -> &'static str {
    match kind {
        K::Forward => "#4e79a7",
        K::BackwardInput => "#f28e2b",
        K::BackwardWeight => "#59a14f",
        K::FullBackward => "#e15759",
        _ => "#999999",
    }
}

/// Seconds as a short human figure (`12.5 ms`, `840 µs`).
pub fn format_seconds(t: f64) -> String {
    if t >= 1.0 {
        format!("{t:.3} s")
    } else if t >= 1e-3 {
        format!("{:.3} ms", t * 1e3)
    } else {
        format!("{:.1} µs", t * 1e6)
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The Gantt chart as an SVG document. Boxes of a rank's later local stages (interleaved and V
/// schedules) are drawn lighter; each box's tooltip is its action (`2F0`).
pub fn render_svg(sim: &Simulation) -> String {
    let ranks = sim.ranks.max(1) as usize;
    let height = TOP + ROW * ranks as f64 + 40.0;
    let scale = if sim.step_time > 0.0 {
        (WIDTH - LEFT - 10.0) / sim.step_time
    } else {
        0.0
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let title = format!(
        "{} ({} stages, {} ranks, {} micro-batches): step {}, bubble {:.1}% ({:.1}% over ideal)",
        sim.name,
        sim.stages,
        sim.ranks,
        sim.microbatches,
        format_seconds(sim.step_time),
        sim.bubble_fraction * 100.0,
        sim.bubble_over_ideal * 100.0
    );
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="20" font-size="13" font-weight="bold">{}</text>"#,
        escape(&title)
    );
    for r in 0..ranks {
        let y = TOP + ROW * r as f64;
        let _ = writeln!(
            s,
            r#"<text x="8" y="{:.1}" font-size="12">rank {r}</text>"#,
            y + ROW * 0.6
        );
        let _ = writeln!(
            s,
            r##"<rect class="track" x="{LEFT}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#eeeeee"/>"##,
            y + 2.0,
            sim.step_time * scale,
            ROW - 4.0
        );
    }
    let mut first_stage = vec![u32::MAX; ranks];
    for i in &sim.intervals {
        let f = &mut first_stage[i.rank as usize];
        *f = (*f).min(i.action.stage);
    }
    for i in &sim.intervals {
        let (x, w) = (LEFT + i.start * scale, (i.end - i.start) * scale);
        let y = TOP + ROW * i.rank as f64 + 2.0;
        let lighter = i.action.stage != first_stage[i.rank as usize];
        let _ = writeln!(
            s,
            r#"<rect class="action" data-action="{a}" x="{x:.2}" y="{y:.1}" width="{w:.2}" height="{h:.1}" fill="{c}" fill-opacity="{o}" stroke="white" stroke-width="0.5"><title>{a}</title></rect>"#,
            a = i.action,
            h = ROW - 4.0,
            c = colour(i.action.kind),
            o = if lighter { 0.6 } else { 1.0 }
        );
        let label = i.action.mb().to_string();
        let size = (w / (label.len() as f64 * 0.65)).min(12.0);
        if size >= 5.0 {
            let _ = writeln!(
                s,
                r#"<text x="{:.2}" y="{:.1}" font-size="{size:.1}" fill="white" text-anchor="middle">{label}</text>"#,
                x + w / 2.0,
                y + (ROW - 4.0) / 2.0 + size * 0.35
            );
        }
    }
    let ly = TOP + ROW * ranks as f64 + 22.0;
    let legend = [
        (K::Forward, "F forward"),
        (K::FullBackward, "B backward"),
        (K::BackwardInput, "I input grad"),
        (K::BackwardWeight, "W weight grad"),
    ];
    for (n, (k, text)) in legend.iter().enumerate() {
        let x = LEFT + 150.0 * n as f64;
        let _ = writeln!(
            s,
            r#"<rect x="{x}" y="{:.1}" width="14" height="14" fill="{}"/>"#,
            ly - 11.0,
            colour(*k)
        );
        let _ = writeln!(
            s,
            r#"<text x="{}" y="{ly:.1}" font-size="12">{text}</text>"#,
            x + 19.0
        );
    }
    let _ = writeln!(
        s,
        r#"<text x="{}" y="{ly:.1}" font-size="12">grey: idle</text>"#,
        LEFT + 600.0
    );
    s.push_str("</svg>\n");
    s
}

/// Chrome trace events: one complete event (`ph: "X"`, times in µs) per action, one thread per
/// rank, with `process_name` and `thread_name` metadata.
pub fn chrome_trace(sim: &Simulation) -> String {
    let mut events = vec![serde_json::json!({
        "name": "process_name", "ph": "M", "pid": 0, "tid": 0,
        "args": { "name": format!("pipeline {}", sim.name) }
    })];
    for r in 0..sim.ranks {
        events.push(serde_json::json!({
            "name": "thread_name", "ph": "M", "pid": 0, "tid": r, "args": { "name": format!("rank {r}") }
        }));
    }
    for i in &sim.intervals {
        events.push(serde_json::json!({
            "name": i.action.to_string(),
            "cat": i.action.kind.code(),
            "ph": "X",
            "pid": 0,
            "tid": i.rank,
            "ts": i.start * 1e6,
            "dur": (i.end - i.start) * 1e6,
            "args": { "stage": i.action.stage, "microbatch": i.action.mb() },
        }));
    }
    let doc = serde_json::json!({ "traceEvents": events, "displayTimeUnit": "ms" });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}
