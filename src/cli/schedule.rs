//! `shardc schedule`: generate (or read), validate, simulate and draw a pipeline schedule.
//!
//! `shardc schedule --schedule 1F1B --stages 4 --micro-batches 8 --timeline out.svg
//! --trace out.json --csv out.csv`; without `--schedule` (or with `auto`) every schedule and
//! the given micro-batch counts are simulated and the fastest is taken.

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use shardc::pipeline::{self, CsvFormat, RankWork, Schedule, ScheduleKind, StageTimes};

use super::{write_output, CliError};

#[derive(Args, Debug)]
pub struct ScheduleArgs {
    /// Schedule: GPipe, 1F1B, Interleaved1F1B, LoopedBFS, InterleavedZeroBubble (zb-h1),
    /// ZBVZeroBubble (zbv), DualPipeV, ForwardOnly, or auto (choose by simulation).
    #[arg(long, default_value = "auto")]
    pub schedule: String,
    /// Number of stages (default: ranks, or 2 × ranks for the V schedules).
    #[arg(long)]
    pub stages: Option<u32>,
    /// Number of pipeline ranks (default: stages, or 4 if neither is given).
    #[arg(long)]
    pub ranks: Option<u32>,
    /// Micro-batches; several (comma-separated) are tried when choosing.
    #[arg(long = "micro-batches", value_delimiter = ',', default_value = "8")]
    pub micro_batches: Vec<u32>,
    /// Read the schedule from torch's CSV instead of generating it.
    #[arg(long, value_name = "FILE", conflicts_with = "schedule")]
    pub load: Option<PathBuf>,
    /// Forward time of one micro-batch on one stage, milliseconds.
    #[arg(long, default_value_t = 1.0)]
    pub forward_ms: f64,
    /// Backward-input time (a full backward is input + weight), milliseconds.
    #[arg(long, default_value_t = 1.0)]
    pub backward_input_ms: f64,
    /// Backward-weight time, milliseconds.
    #[arg(long, default_value_t = 1.0)]
    pub backward_weight_ms: f64,
    /// Point-to-point transfer time of one activation, milliseconds.
    #[arg(long, default_value_t = 0.0)]
    pub p2p_ms: f64,
    /// Write the Gantt chart (SVG).
    #[arg(long, value_name = "FILE")]
    pub timeline: Option<PathBuf>,
    /// Write Chrome trace events (JSON; Perfetto, chrome://tracing).
    #[arg(long, value_name = "FILE")]
    pub trace: Option<PathBuf>,
    /// Write the schedule as torch's CSV.
    #[arg(long, value_name = "FILE")]
    pub csv: Option<PathBuf>,
    /// The CSV form written or read.
    #[arg(long, value_enum, default_value = "compute-only")]
    pub csv_format: CsvForm,
    /// Print the per-rank action table.
    #[arg(long)]
    pub table: bool,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CsvForm {
    /// F, I, W, B only.
    ComputeOnly,
    /// With SEND_F/RECV_F/SEND_B/RECV_B and REDUCE_GRAD.
    ComputeComms,
}

impl From<CsvForm> for CsvFormat {
    fn from(f: CsvForm) -> Self {
        match f {
            CsvForm::ComputeOnly => CsvFormat::ComputeOnly,
            CsvForm::ComputeComms => CsvFormat::ComputeComms,
        }
    }
}

fn check_time(name: &str, ms: f64) -> Result<f64, CliError> {
    if !ms.is_finite() || ms < 0.0 {
        return Err(CliError::Input(format!(
            "--{name} must be a non-negative number of milliseconds, got {ms}"
        )));
    }
    Ok(ms * 1e-3)
}

pub fn run(a: ScheduleArgs) -> Result<(), CliError> {
    let (f, i, w, p2p) = (
        check_time("forward-ms", a.forward_ms)?,
        check_time("backward-input-ms", a.backward_input_ms)?,
        check_time("backward-weight-ms", a.backward_weight_ms)?,
        check_time("p2p-ms", a.p2p_ms)?,
    );
    let (schedule, times) = build(&a, f, i, w, p2p)?;
    schedule
        .validate()
        .map_err(|e| CliError::CheckFailed(e.to_string()))?;
    let sim = pipeline::simulate(&schedule, &times).map_err(CliError::input)?;
    println!(
        "{}: {} stages on {} ranks, {} micro-batches: valid",
        schedule.name(),
        schedule.stages,
        schedule.ranks,
        schedule.microbatches
    );
    println!(
        "step {}, bubble {:.1}% of rank time, {:.1}% over ideal; peak micro-batches held per stage {:?}",
        pipeline::format_seconds(sim.step_time),
        sim.bubble_fraction * 100.0,
        sim.bubble_over_ideal * 100.0,
        sim.peak_in_flight
    );
    if a.table {
        print!("{}", schedule.format_table());
    }
    if let Some(p) = &a.timeline {
        write_output(Some(p), &pipeline::render_svg(&sim))?;
    }
    if let Some(p) = &a.trace {
        write_output(Some(p), &pipeline::chrome_trace(&sim))?;
    }
    if let Some(p) = &a.csv {
        write_output(
            Some(p),
            &schedule
                .to_csv(a.csv_format.into())
                .map_err(CliError::input)?,
        )?;
    }
    Ok(())
}

/// The schedule asked for (read, generated, or chosen by simulation) and its stage times.
fn build(
    a: &ScheduleArgs,
    f: f64,
    i: f64,
    w: f64,
    p2p: f64,
) -> Result<(Schedule, StageTimes), CliError> {
    let given = |s: Schedule| {
        let times = StageTimes::uniform(s.stages, f, i, w, p2p);
        (s, times)
    };
    if let Some(path) = &a.load {
        let text = std::fs::read_to_string(path).map_err(|source| CliError::Io {
            path: path.display().to_string(),
            source,
        })?;
        return Schedule::from_csv(&text, a.csv_format.into())
            .map(given)
            .map_err(|e| CliError::Input(format!("{}: {e}", path.display())));
    }
    if a.micro_batches.is_empty() || a.micro_batches.contains(&0) {
        return Err(CliError::Input("--micro-batches must be positive".into()));
    }
    if a.schedule.eq_ignore_ascii_case("auto") {
        let ranks = a.ranks.or(a.stages).unwrap_or(4);
        // The rank's share of the mini-batch: per-micro-batch stage times × m at v = 1.
        let m0 = f64::from(a.micro_batches[0]);
        let work = RankWork {
            forward: f * m0,
            backward_input: i * m0,
            backward_weight: w * m0,
            p2p: p2p * m0,
        };
        let training: Vec<ScheduleKind> = ScheduleKind::ALL
            .into_iter()
            .filter(|k| k.has_backward())
            .collect();
        let ranked = pipeline::choose_schedule(ranks, &a.micro_batches, &training, &work)
            .map_err(CliError::input)?;
        for c in ranked.iter().take(5) {
            println!(
                "  {:<22} stages {:>3}  micro-batches {:>4}  step {}",
                c.kind.name(),
                c.stages,
                c.microbatches,
                pipeline::format_seconds(c.simulation.step_time)
            );
        }
        let best = &ranked[0];
        // The chosen candidate's per-micro-batch, per-stage times (the work split m · v ways).
        let per = f64::from(best.microbatches) * f64::from(best.stages / ranks) / m0;
        let times = StageTimes::uniform(
            best.stages,
            f / per,
            i / per,
            w / per,
            p2p * m0 / f64::from(best.microbatches),
        );
        let schedule = Schedule::generate(best.kind, best.stages, ranks, best.microbatches)
            .map_err(CliError::input)?;
        return Ok((schedule, times));
    }
    let kind: ScheduleKind = a.schedule.parse().map_err(CliError::input)?;
    if a.micro_batches.len() != 1 {
        return Err(CliError::Input(
            "give one --micro-batches value with a named --schedule".into(),
        ));
    }
    let ranks = match (a.ranks, a.stages) {
        (Some(r), _) => r,
        (None, Some(s)) if kind.v_shape() => s / 2,
        (None, Some(s)) => s,
        (None, None) => 4,
    };
    let stages = a
        .stages
        .unwrap_or(if kind.v_shape() { 2 * ranks } else { ranks });
    Schedule::generate(kind, stages, ranks, a.micro_batches[0])
        .map(given)
        .map_err(CliError::input)
}
