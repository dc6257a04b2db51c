//! Buffers of freed values, handed to later kernels that make a value of the same length.
//!
//! A fresh allocation of a large tensor costs a page fault per 4 KiB page the first time it is
//! written (glibc maps blocks over 32 MiB fresh from the kernel and unmaps them on free): on this
//! project's 2-core machine, about 200 ms for the 206 MB logits of the GPT-2-small forward, ten
//! times the cost of writing it. The executor recycles each value it frees here (one pool per
//! thread, so no locking) and empties the pool when its run ends; the kernels' contiguous loops
//! (`par`) and the matmul take their output buffers from it. A recycled buffer holds stale values:
//! takers overwrite every element.

use std::any::Any;
use std::cell::RefCell;

use ndarray::ArrayD;

use crate::tensor::{Data, Elem, Tensor};

/// Smaller buffers come cheaply from the allocator's own free lists.
const MIN_BYTES: usize = 1 << 20;
/// The most a thread's pool holds; beyond it the oldest buffers are freed.
const MAX_BYTES: usize = 1 << 30;

struct Buffer {
    len: usize,
    bytes: usize,
    vec: Box<dyn Any>,
}

thread_local! {
    static FREE: RefCell<Vec<Buffer>> = const { RefCell::new(Vec::new()) };
}

/// Keeps the storage of a value the executor no longer needs.
pub(crate) fn recycle(t: Tensor) {
    fn whole<T: 'static>(a: ArrayD<T>) -> Option<Buffer> {
        let bytes = a.len() * std::mem::size_of::<T>();
        if bytes < MIN_BYTES {
            return None;
        }
        let (v, offset) = a.into_raw_vec_and_offset();
        // A view into a larger buffer (offset past 0) is not a whole buffer to hand out.
        (offset == Some(0) && v.len() * std::mem::size_of::<T>() == bytes).then(|| Buffer {
            len: v.len(),
            bytes,
            vec: Box::new(v),
        })
    }
    let whole = match t.into_data() {
        Data::F32(a) => whole(a),
        Data::F64(a) => whole(a),
        Data::I32(a) => whole(a),
        Data::I64(a) => whole(a),
        Data::Bool(a) => whole(a),
    };
    let Some(buffer) = whole else { return };
    FREE.with(|f| {
        let mut f = f.borrow_mut();
        f.push(buffer);
        let mut total: usize = f.iter().map(|b| b.bytes).sum();
        while total > MAX_BYTES && !f.is_empty() {
            total -= f.remove(0).bytes;
        }
    });
}

/// A recycled buffer of exactly `len` elements of `T`, with stale contents.
pub(crate) fn take<T: Elem>(len: usize) -> Option<Vec<T>> {
    if len * std::mem::size_of::<T>() < MIN_BYTES {
        return None;
    }
    FREE.with(|f| {
        let mut f = f.borrow_mut();
        let at = f
            .iter()
            .rposition(|b| b.len == len && b.vec.is::<Vec<T>>())?;
        f.remove(at).vec.downcast::<Vec<T>>().ok().map(|v| *v)
    })
}

/// A buffer of `len` elements, recycled or fresh, every element `value`.
pub(crate) fn filled<T: Elem>(len: usize, value: T) -> Vec<T> {
    match take(len) {
        Some(mut v) => {
            v.fill(value);
            v
        }
        None => vec![value; len],
    }
}

/// Frees every buffer this thread's pool holds when dropped (the end of a run).
pub(crate) struct ClearOnDrop;

impl Drop for ClearOnDrop {
    fn drop(&mut self) {
        FREE.with(|f| f.borrow_mut().clear());
    }
}
