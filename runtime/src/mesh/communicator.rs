//! The interface between a device's executor and the other devices.

use shardc_ir::{Mesh, ReduceFn, TensorType};

use crate::error::RuntimeError;
use crate::tensor::Tensor;

/// One device's endpoint for collectives and point-to-point transfers.
///
/// Collectives take their operand by value so that a backend can hand the buffer to its peers
/// and reuse it for the result without copying (the executor passes a value's last use).
///
/// Collectives run over the group of devices that share all mesh coordinates except on `axes`;
/// a device's rank in the group is its linear index over `axes`, major first
/// (`Mesh::linear_index`). Every member of a group must make the same collective calls in the
/// same order. The semantics are those of the IR's collective ops (`shardc_ir::Op`).
pub trait Communicator {
    /// This device's position in its mesh.
    fn position(&self) -> usize;
    /// The mesh this device belongs to.
    fn mesh(&self) -> &Mesh;
    /// Every member gets the elementwise reduction of all members' `x`.
    fn all_reduce(
        &mut self,
        x: Tensor,
        axes: &[String],
        func: ReduceFn,
    ) -> Result<Tensor, RuntimeError>;
    /// Every member gets all members' `x` joined along `dim` in rank order.
    fn all_gather(
        &mut self,
        x: Tensor,
        dim: usize,
        axes: &[String],
    ) -> Result<Tensor, RuntimeError>;
    /// The reduction of all members' `x`, split along `dim`: rank `r` keeps chunk `r`.
    fn reduce_scatter(
        &mut self,
        x: Tensor,
        dim: usize,
        axes: &[String],
        func: ReduceFn,
    ) -> Result<Tensor, RuntimeError>;
    /// Rank `r` gets chunk `r` along `split_dim` of every member's `x`, joined along `concat_dim`
    /// in rank order.
    fn all_to_all(
        &mut self,
        x: Tensor,
        split_dim: usize,
        concat_dim: usize,
        axes: &[String],
    ) -> Result<Tensor, RuntimeError>;
    /// Within each group along `axes`, linear coordinate `s` sends `x` to `t` for each pair
    /// `(s, t)`; a device that receives nothing gets zeros.
    fn collective_permute(
        &mut self,
        x: Tensor,
        axes: &[String],
        pairs: &[(u64, u64)],
    ) -> Result<Tensor, RuntimeError>;
    /// Sends `x` to global device `to` under `tag` (buffered: returns without waiting).
    fn send(&mut self, x: Tensor, to: usize, tag: &str) -> Result<(), RuntimeError>;
    /// Receives the tensor of type `ty` that global device `from` sent under `tag`.
    fn recv(&mut self, from: usize, tag: &str, ty: &TensorType) -> Result<Tensor, RuntimeError>;
}
