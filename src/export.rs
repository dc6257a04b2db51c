//! Plans handed back to the frameworks: [`export`] writes a plan as PyTorch, JAX, Shardy or XLA
//! take it (`shardc plan ... --export FORMAT`).

use shardc_ir::Graph;
use shardc_sharding::auto::Plan;

use crate::error::{Error, Result, Step};

/// What a plan can be exported as.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// A `torch.distributed` snippet: the `DeviceMesh`, `parallelize_module` styles,
    /// `fully_shard` for ZeRO-3 and `distribute_tensor` placements for the other parameters.
    Torch,
    /// A JAX snippet: the `Mesh` and a `NamedSharding` per input and parameter.
    Jax,
    /// Every value with its Shardy sharding attribute, after the `sdy.mesh`.
    Sdy,
    /// The graph as an XLA HLO module with a sharding on every instruction.
    Hlo,
}

impl ExportFormat {
    /// Every format, in the order the CLI lists them.
    pub const ALL: [ExportFormat; 4] = [
        ExportFormat::Torch,
        ExportFormat::Jax,
        ExportFormat::Sdy,
        ExportFormat::Hlo,
    ];

    /// The name the CLI uses (`--export torch`).
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Torch => "torch",
            ExportFormat::Jax => "jax",
            ExportFormat::Sdy => "sdy",
            ExportFormat::Hlo => "hlo",
        }
    }
}

impl std::str::FromStr for ExportFormat {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        ExportFormat::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| format!("unknown export format `{s}`: expected torch, jax, sdy or hlo"))
    }
}

/// `plan`, a plan of `g`, written as `format` takes it. Values are named as `g` names them:
/// for an ONNX model, the PyTorch module paths of its parameters (`ir::onnx` maps the
/// exporters' folded weights back to them).
pub fn export(g: &Graph, plan: &Plan, format: ExportFormat) -> Result<String> {
    let what = format!("graph `{}` as {}", g.name, format.name());
    let fail = |e: shardc_sharding::ShardingError| Error::new(Step::Export, &what, e);
    let assignment = plan
        .assignment(g)
        .map_err(|e| Error::new(Step::Plan, &what, e))?;
    match format {
        ExportFormat::Torch => shardc_sharding::export_torch(g, &assignment).map_err(fail),
        ExportFormat::Jax => shardc_sharding::export_jax(g, &assignment).map_err(fail),
        ExportFormat::Sdy => shardc_sharding::export_sdy(g, &assignment).map_err(fail),
        ExportFormat::Hlo => shardc_sharding::export_hlo_graph(g, &assignment)
            .map(|(text, _)| text)
            .map_err(fail),
    }
}
