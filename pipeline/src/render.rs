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
/// schedules) are drawn lighter; each box's tooltip is its action (`2F0`). The title gives the
/// simulated step and bubble share.
pub fn render_svg(sim: &Simulation) -> String {
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
    render_svg_titled(sim, &title)
}

/// [`render_svg`] with the caller's title (the planner's names the mesh and its whole step).
/// The chart widens with the actions per rank (up to 4000 px) so that boxes stay visible, and
/// a time axis runs under the rows.
pub fn render_svg_titled(sim: &Simulation, title: &str) -> String {
    let ranks = sim.ranks.max(1) as usize;
    let mut per_rank = vec![0usize; ranks];
    for i in &sim.intervals {
        per_rank[i.rank as usize] += 1;
    }
    let most = per_rank.iter().copied().max().unwrap_or(0) as f64;
    // At least 3 px per box on the busiest rank, and room for the title.
    let title_px = 7.5 * title.chars().count() as f64;
    let width = (LEFT + 10.0 + (3.0 * most).max(WIDTH - LEFT - 10.0))
        .max(LEFT + title_px)
        .min(4000.0)
        .round();
    let plot = width - LEFT - 10.0;
    let axis_y = TOP + ROW * ranks as f64 + 4.0;
    let height = axis_y + 60.0;
    let scale = if sim.step_time > 0.0 {
        plot / sim.step_time
    } else {
        0.0
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" font-family="sans-serif">"#
    );
    let _ = writeln!(s, r#"<rect width="100%" height="100%" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="20" font-size="13" font-weight="bold">{}</text>"#,
        escape(title)
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
            r##"<rect class="track" x="{LEFT}" y="{:.1}" width="{:.1}" height="{:.1}" fill="#dddddd"/>"##,
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
        // A white edge separates wide boxes; on thin ones it would wash the colour out.
        let edge = if w >= 4.0 {
            r#" stroke="white" stroke-width="0.5""#
        } else {
            ""
        };
        let _ = writeln!(
            s,
            r#"<rect class="action" data-action="{a}" x="{x:.2}" y="{y:.1}" width="{w:.2}" height="{h:.1}" fill="{c}" fill-opacity="{o}"{edge}><title>{a}</title></rect>"#,
            a = i.action,
            h = ROW - 4.0,
            c = colour(i.action.kind),
            o = if lighter { 0.65 } else { 1.0 }
        );
        let label = i.action.mb().to_string();
        let size = (w / (label.len() as f64 * 0.65)).min(12.0);
        // Smaller figures are unreadable clutter; the tooltip still names the action.
        if size >= 8.0 {
            let _ = writeln!(
                s,
                r#"<text x="{:.2}" y="{:.1}" font-size="{size:.1}" fill="white" text-anchor="middle">{label}</text>"#,
                x + w / 2.0,
                y + (ROW - 4.0) / 2.0 + size * 0.35
            );
        }
    }
    axis(&mut s, sim.step_time, scale, axis_y);
    let ly = axis_y + 48.0;
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
        r#"<text x="{}" y="{ly:.1}" font-size="12">grey: idle; lighter: a rank's second stage</text>"#,
        LEFT + 600.0
    );
    s.push_str("</svg>\n");
    s
}

/// An axis figure without trailing zeros (`5 s`, `250 ms`, `1.5 ms`).
fn tick_label(t: f64) -> String {
    let (v, unit) = if t >= 1.0 {
        (t, "s")
    } else if t >= 1e-3 {
        (t * 1e3, "ms")
    } else {
        (t * 1e6, "µs")
    };
    let text = format!("{v:.3}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} {unit}")
}

/// A time axis from 0 to `step` at 1, 2 or 5 times a power of ten, about ten ticks.
fn axis(s: &mut String, step: f64, scale: f64, y: f64) {
    if step <= 0.0 || !step.is_finite() {
        return;
    }
    let raw = step / 10.0;
    let pow = 10f64.powf(raw.log10().floor());
    let tick = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|k| k * pow)
        .find(|&t| t >= raw)
        .unwrap_or(10.0 * pow);
    let _ = writeln!(
        s,
        r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#333333"/>"##,
        LEFT + step * scale
    );
    let mut k = 0u32;
    loop {
        let t = tick * f64::from(k);
        if t > step * (1.0 + 1e-9) {
            break;
        }
        let x = LEFT + t * scale;
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{y:.1}" x2="{x:.1}" y2="{:.1}" stroke="#333333"/>"##,
            y + 5.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"#,
            y + 18.0,
            if k == 0 {
                "0".to_string()
            } else {
                tick_label(t)
            }
        );
        k += 1;
    }
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
