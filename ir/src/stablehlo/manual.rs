//! `sdy.manual_computation` (jax's `shard_map`) and the collectives inside it.

use super::convert::{Comp, Converter};
use super::parse::Statement;
use super::types::TensorTy;

/// `sdy.manual_computation(..) in_shardings=[..] out_shardings=[..] manual_axes={..} (..) {..}`.
pub(crate) fn manual_computation(
    _c: &mut Converter,
    _comp: &mut Comp,
    _st: &Statement,
    _res: &[TensorTy],
) -> Result<(), String> {
    Err("manual computations (shard_map) are unsupported".into())
}

/// A collective with `replica_groups`.
pub(crate) fn collective(
    _c: &mut Converter,
    st: &Statement,
    _args: &str,
) -> Result<String, String> {
    Err(format!(
        "`{}` outside a manual computation is unsupported",
        st.name
    ))
}
