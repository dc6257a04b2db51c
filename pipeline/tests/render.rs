//! The pictures: the SVG Gantt chart parses as XML with one box per action, and the Chrome trace
//! is the event format Perfetto reads.

use shardc_pipeline::{
    chrome_trace, render_svg, simulate, Schedule, ScheduleKind as S, StageTimes,
};

/// A minimal XML reader for the SVG we write: every `<rect ...>` with its attributes.
fn rects(svg: &str) -> Vec<Vec<(String, String)>> {
    let mut out = Vec::new();
    let mut rest = svg;
    while let Some(i) = rest.find("<rect") {
        let end = rest[i..].find('>').unwrap() + i;
        let tag = &rest[i + 5..end];
        let mut attrs = Vec::new();
        let mut t = tag.trim_start();
        while let Some(eq) = t.find("=\"") {
            let name = t[..eq].trim().to_string();
            let close = t[eq + 2..].find('"').unwrap() + eq + 2;
            attrs.push((name, t[eq + 2..close].to_string()));
            t = t[close + 1..].trim_start();
        }
        out.push(attrs);
        rest = &rest[end..];
    }
    out
}

fn attr<'a>(r: &'a [(String, String)], k: &str) -> Option<&'a str> {
    r.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
}

#[test]
fn svg_has_a_row_per_rank_a_box_per_action_and_the_step_time_in_its_title() {
    let s = Schedule::generate(S::InterleavedZeroBubble, 4, 4, 8).unwrap();
    let sim = simulate(&s, &StageTimes::uniform(4, 1e-3, 1e-3, 1e-3, 0.0)).unwrap();
    let svg = render_svg(&sim);
    assert!(
        svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"")
            && svg.trim_end().ends_with("</svg>")
    );
    assert_eq!(svg.matches('<').count(), svg.matches('>').count());
    let all = rects(&svg);
    let tracks = all
        .iter()
        .filter(|r| attr(r, "class") == Some("track"))
        .count();
    let boxes: Vec<_> = all
        .iter()
        .filter(|r| attr(r, "class") == Some("action"))
        .collect();
    assert_eq!(tracks, 4);
    assert_eq!(boxes.len(), 4 * 8 * 3);
    let colours: std::collections::BTreeSet<_> =
        boxes.iter().map(|r| attr(r, "fill").unwrap()).collect();
    assert_eq!(colours.len(), 3, "F, I and W each in their own colour");
    assert!(boxes.iter().any(|r| attr(r, "data-action") == Some("3W7")));
    // Title: the step time and the bubble share.
    let title = format!("step {}", shardc_pipeline::format_seconds(sim.step_time));
    assert!(svg.contains(&title) && svg.contains("bubble"), "{svg}");
    // Micro-batch numbers are written in the boxes.
    assert!(svg.contains(">7</text>"));
}

#[test]
fn chrome_trace_has_complete_events_in_microseconds_and_thread_names() {
    let s = Schedule::generate(S::OneFOneB, 2, 2, 2).unwrap();
    let sim = simulate(&s, &StageTimes::uniform(2, 1e-3, 2e-3, 0.0, 0.0)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&chrome_trace(&sim)).unwrap();
    let events = v["traceEvents"].as_array().unwrap();
    let x: Vec<_> = events.iter().filter(|e| e["ph"] == "X").collect();
    assert_eq!(x.len(), 8);
    let f0 = x.iter().find(|e| e["name"] == "0F0").unwrap();
    assert_eq!(
        (f0["ts"].as_f64().unwrap(), f0["dur"].as_f64().unwrap()),
        (0.0, 1000.0)
    );
    let b = x.iter().find(|e| e["name"] == "1B0").unwrap();
    assert_eq!(b["dur"].as_f64().unwrap(), 2000.0);
    assert!(events
        .iter()
        .any(|e| e["ph"] == "M" && e["name"] == "thread_name" && e["args"]["name"] == "rank 1"));
}

#[test]
fn a_long_schedule_widens_the_chart_keeps_boxes_visible_and_has_a_time_axis() {
    let s = Schedule::generate(S::ZbVZeroBubble, 16, 8, 64).unwrap();
    let sim = simulate(&s, &StageTimes::uniform(16, 1e-3, 1e-3, 1e-3, 0.0)).unwrap();
    let svg = shardc_pipeline::render_svg_titled(&sim, "my title");
    assert!(svg.contains(">my title</text>"));
    let width: f64 = svg
        .split("width=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(width > 1000.0 && width <= 4000.0, "{width}");
    let boxes: Vec<_> = rects(&svg)
        .into_iter()
        .filter(|r| attr(r, "class") == Some("action"))
        .collect();
    assert_eq!(boxes.len(), 16 * 64 * 3);
    for b in &boxes {
        let w: f64 = attr(b, "width").unwrap().parse().unwrap();
        assert!(w >= 2.0, "{w}");
        // Thin boxes have no white edge that would wash them out.
        assert_eq!(attr(b, "stroke").is_some(), w >= 4.0);
    }
    // Axis ticks from 0, labelled without trailing zeros.
    assert!(svg.contains(">0</text>") && svg.contains(" ms</text>"));
    assert!(!svg.contains(".000 ms</text>"));
}
