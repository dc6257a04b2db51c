//! torch's CSV form of a schedule (`_dump_csv` / `_load_csv`): one row per rank, one action per
//! cell, an empty cell for an idle step. `compute_only` holds F/I/W/B; `compute_comms` adds the
//! sends, receives and `REDUCE_GRAD`.

use std::collections::BTreeMap;

use crate::action::{parse_cell, Action};
use crate::error::{Error, Result};
use crate::schedule::Schedule;

/// Which of torch's two CSV forms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CsvFormat {
    /// Compute actions only (torch's default for `PipelineScheduleMulti._load_csv`).
    ComputeOnly,
    /// Compute and communication actions (`_PipelineScheduleRuntime._load_csv(format="compute_comms")`).
    ComputeComms,
}

impl Schedule {
    /// Writes the schedule as torch's CSV.
    pub fn to_csv(&self, format: CsvFormat) -> Result<String> {
        let rows: Vec<Vec<Option<Action>>> = match format {
            CsvFormat::ComputeOnly => self.compute.clone(),
            CsvFormat::ComputeComms => self
                .with_comms()?
                .into_iter()
                .map(|r| r.into_iter().map(Some).collect())
                .collect(),
        };
        let mut out = String::new();
        for row in rows {
            let cells: Vec<String> = row
                .iter()
                .map(|a| a.map(|a| a.to_string()).unwrap_or_default())
                .collect();
            out.push_str(&cells.join(","));
            out.push_str("\r\n");
        }
        Ok(out)
    }

    /// Reads torch's CSV. The stage-to-rank map is inferred (a stage must sit on one rank);
    /// stages and micro-batches are counted from the actions. `compute_comms` files are checked
    /// with [`Schedule::validate_comms`], `compute_only` with [`Schedule::validate`].
    pub fn from_csv(text: &str, format: CsvFormat) -> Result<Schedule> {
        let mut rows: Vec<Vec<Option<Action>>> = Vec::new();
        for (r, line) in text.lines().enumerate() {
            let mut row = Vec::new();
            for (c, cell) in line.split(',').enumerate() {
                let cell = cell.trim().trim_matches('"');
                let actions = parse_cell(cell).map_err(|e| Error::Parse {
                    text: cell.to_string(),
                    reason: format!("row {r} (rank {r}), column {c}: {e}"),
                })?;
                if actions.is_empty() {
                    row.push(None);
                }
                row.extend(actions.into_iter().map(Some));
            }
            rows.push(row);
        }
        let schedule = Schedule::from_rows(&rows)?;
        match format {
            CsvFormat::ComputeOnly => {
                if let Some(a) = rows
                    .iter()
                    .flatten()
                    .flatten()
                    .find(|a| !a.kind.is_compute())
                {
                    return Err(Error::Invalid(format!(
                        "{a} in a compute_only schedule; read it as compute_comms"
                    )));
                }
                schedule.validate()?;
                Ok(schedule)
            }
            CsvFormat::ComputeComms => {
                let comms: Vec<Vec<Action>> = rows
                    .iter()
                    .map(|r| r.iter().flatten().copied().collect())
                    .collect();
                schedule.validate_comms(&comms)?;
                let compute = rows
                    .into_iter()
                    .map(|r| {
                        r.into_iter()
                            .map(|a| a.filter(|a| a.kind.is_compute()))
                            .filter(Option::is_some)
                            .collect()
                    })
                    .collect();
                Ok(Schedule {
                    compute,
                    ..schedule
                })
            }
        }
    }

    /// A custom schedule from per-rank lists, its stage-to-rank map inferred.
    pub fn from_rows(rows: &[Vec<Option<Action>>]) -> Result<Schedule> {
        if rows.is_empty() {
            return Err(Error::Invalid("no ranks (the schedule has no rows)".into()));
        }
        let mut home: BTreeMap<u32, u32> = BTreeMap::new();
        let mut microbatches = 0;
        for (r, row) in rows.iter().enumerate() {
            for a in row.iter().flatten() {
                if *home.entry(a.stage).or_insert(r as u32) != r as u32 {
                    return Err(Error::Invalid(format!(
                        "stage {} is assigned to both rank {} and rank {r} ({a})",
                        a.stage, home[&a.stage]
                    )));
                }
                if a.kind.has_microbatch() {
                    microbatches = microbatches.max(a.mb() + 1);
                }
            }
        }
        let stages = home.keys().next_back().map_or(0, |s| s + 1);
        if let Some(s) = (0..stages).find(|s| !home.contains_key(s)) {
            return Err(Error::Invalid(format!(
                "stage {s} has no actions (stages 0..{stages} appear)"
            )));
        }
        if stages > 1 << 16 {
            return Err(Error::Invalid(format!("{stages} stages; at most 65536")));
        }
        Ok(Schedule {
            kind: None,
            stages,
            ranks: rows.len() as u32,
            microbatches,
            stage_to_rank: (0..stages).map(|s| home[&s]).collect(),
            compute: rows
                .iter()
                .map(|r| {
                    r.iter()
                        .map(|a| a.filter(|a| a.kind.is_compute()))
                        .collect()
                })
                .collect(),
        })
    }
}
