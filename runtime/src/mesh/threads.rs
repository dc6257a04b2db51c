//! The threads backend: one thread per device, each owning its tensors; collectives meet in
//! shared memory (a mutex-guarded board and a condition variable).
//!
//! Every wait is bounded. The first device to fail (an error, a panic, a timeout) marks the
//! board failed; every other device's pending or next collective, and its next node, then
//! returns [`RuntimeError::Aborted`]. Threads are scoped, so none outlives [`launch`].

use std::collections::{HashMap, VecDeque};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use shardc_ir::{Mesh, ReduceFn, TensorType};

use super::collectives;
use super::communicator::Communicator;
use super::{group, AllReduceAlgorithm};
use crate::error::RuntimeError;
use crate::tensor::Tensor;

struct Failure {
    device: usize,
    message: String,
}

/// One collective call of one group: the members' contributions, in rank order.
struct Slot {
    what: String,
    parts: Vec<Option<Arc<Tensor>>>,
    fetched: usize,
    /// An in-place all-reduce: the last member to arrive has reduced `parts` and put them back.
    reduced: bool,
}

/// One all-reduce handed to the Reduction Server's reducer threads: reducer `j` sums flat
/// chunk `j` of every member's contribution.
struct Job {
    parts: Vec<Arc<Tensor>>,
    func: ReduceFn,
    len: usize,
    results: Vec<Option<Arc<Tensor>>>,
    fetched: usize,
}

/// A group's global device ids and the group's call count.
type SlotKey = (Vec<usize>, u64);

#[derive(Default)]
struct State {
    failed: Option<Failure>,
    /// Reduction Server jobs, keyed like `slots`. Never iterated.
    jobs: HashMap<(Vec<usize>, u64), Job>,
    /// (job, reducer) pairs waiting for a reducer thread, first in first out.
    tasks: VecDeque<((Vec<usize>, u64), usize)>,
    /// Every device has finished: reducer threads return.
    shutdown: bool,
    /// Keyed by the group's global device ids and the group's call count. Never iterated.
    slots: HashMap<(Vec<usize>, u64), Slot>,
    /// Point-to-point messages by (from, to, tag), first in first out. Never iterated.
    mail: HashMap<(usize, usize, String), VecDeque<Tensor>>,
}

/// The shared rendezvous of all devices of one launch.
pub(crate) struct Board {
    state: Mutex<State>,
    cv: Condvar,
    failed: AtomicBool,
    timeout: Duration,
    /// Reducer threads of the Reduction Server (0: all-reduces run among the devices).
    reducers: usize,
}

impl Board {
    fn new(timeout: Duration, reducers: usize) -> Self {
        Board {
            state: Mutex::new(State::default()),
            cv: Condvar::new(),
            failed: AtomicBool::new(false),
            timeout,
            reducers,
        }
    }

    /// A reducer thread: takes (job, chunk) tasks until shutdown or failure. The sums run
    /// outside the lock, so reducers work in parallel with each other and with the devices.
    fn serve(&self, reducer: usize) {
        let mut s = self.lock();
        loop {
            if s.shutdown || s.failed.is_some() {
                return;
            }
            let Some((key, j)) = s.tasks.pop_front() else {
                s = self.cv.wait(s).unwrap_or_else(|e| e.into_inner());
                continue;
            };
            let Some(job) = s.jobs.get(&key) else {
                continue;
            };
            let (parts, func, range) = (
                job.parts.clone(),
                job.func,
                collectives::flat_chunk(job.len, self.reducers, j),
            );
            drop(s);
            let r = collectives::reduce_flat(&refs(&parts), func, range, None);
            drop(parts);
            s = self.lock();
            match r {
                Ok(t) => {
                    if let Some(job) = s.jobs.get_mut(&key) {
                        job.results[j] = Some(Arc::new(t));
                        if job.results.iter().all(Option::is_some) {
                            // The members' buffers are theirs again (they become the results).
                            job.parts.clear();
                        }
                    }
                }
                Err(m) => {
                    drop(s);
                    self.fail(key.0[0], format!("reducer {reducer}: {m}"));
                    return;
                }
            }
            self.cv.notify_all();
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic never happens while the lock is held (kernels run outside it), but if it did,
        // the state is still consistent enough to report failure.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Marks the launch failed (the first failure wins) and wakes every waiting device.
    fn fail(&self, device: usize, message: String) {
        let mut s = self.lock();
        if s.failed.is_none() {
            s.failed = Some(Failure { device, message });
            self.failed.store(true, Ordering::SeqCst);
        }
        drop(s);
        self.cv.notify_all();
    }

    fn aborted(device: usize, f: &Failure) -> RuntimeError {
        RuntimeError::Aborted {
            device,
            failed: f.device,
            cause: f.message.clone(),
        }
    }

    /// Errors if another device has failed (a cheap check without the lock when none has).
    fn check(&self, device: usize) -> Result<(), RuntimeError> {
        if !self.failed.load(Ordering::SeqCst) {
            return Ok(());
        }
        match &self.lock().failed {
            Some(f) => Err(Self::aborted(device, f)),
            None => Ok(()),
        }
    }

    /// Waits until `ready` holds, another device fails, or the timeout passes.
    fn wait_until<'a>(
        &'a self,
        mut s: MutexGuard<'a, State>,
        device: usize,
        what: &str,
        mut ready: impl FnMut(&mut State) -> bool,
    ) -> Result<MutexGuard<'a, State>, RuntimeError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(f) = &s.failed {
                return Err(Self::aborted(device, f));
            }
            if ready(&mut s) {
                return Ok(s);
            }
            let now = Instant::now();
            if now >= deadline {
                let e = RuntimeError::Timeout {
                    device,
                    seconds: self.timeout.as_secs(),
                    what: what.to_string(),
                };
                s.failed = Some(Failure {
                    device,
                    message: e.to_string(),
                });
                self.failed.store(true, Ordering::SeqCst);
                drop(s);
                self.cv.notify_all();
                return Err(e);
            }
            s = self
                .cv
                .wait_timeout(s, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

/// A device's communicator in the threads backend.
pub struct ThreadComm<'b> {
    board: &'b Board,
    device: usize,
    mesh: Mesh,
    /// The global device id of each position of `mesh`.
    globals: Vec<usize>,
    position: usize,
    /// How many collectives each group (by global ids) has run, to pair up calls.
    calls: HashMap<Vec<usize>, u64>,
}

impl<'b> ThreadComm<'b> {
    /// This device's global id (its index in the launch).
    pub fn device(&self) -> usize {
        self.device
    }

    /// Errors if another device of the launch has failed.
    pub fn check(&self) -> Result<(), RuntimeError> {
        self.board.check(self.device)
    }

    fn err(&self, message: impl Into<String>) -> RuntimeError {
        RuntimeError::Device {
            device: self.device,
            message: message.into(),
        }
    }

    /// Puts `x` on the board for the group over `axes`: returns the locked board, the call's
    /// key, this device's rank in the group and the group's size.
    fn deposit(
        &mut self,
        axes: &[String],
        what: &str,
        x: Arc<Tensor>,
    ) -> Result<(MutexGuard<'b, State>, SlotKey, usize, usize), RuntimeError> {
        let g =
            group(&self.mesh, self.position, axes).map_err(|m| self.err(format!("{what}: {m}")))?;
        let members: Vec<usize> = g.members.iter().map(|&p| self.globals[p]).collect();
        let n = members.len();
        let calls = self.calls.entry(members.clone()).or_insert(0);
        let key = (members, *calls);
        *calls += 1;
        let mut s = self.board.lock();
        if let Some(f) = &s.failed {
            return Err(Board::aborted(self.device, f));
        }
        let slot = s.slots.entry(key.clone()).or_insert_with(|| Slot {
            what: what.to_string(),
            parts: vec![None; n],
            fetched: 0,
            reduced: false,
        });
        if slot.what != what {
            let msg = format!(
                "collective mismatch in group {:?}: this device calls {what}, another calls {}",
                key.0, slot.what
            );
            drop(s);
            self.board.fail(self.device, msg.clone());
            return Err(self.err(msg));
        }
        slot.parts[g.rank] = Some(x);
        self.board.cv.notify_all();
        Ok((s, key, g.rank, n))
    }

    /// Puts `x` on the board for the group over `axes` and returns every member's contribution
    /// in rank order, with this device's rank.
    fn exchange(
        &mut self,
        axes: &[String],
        what: String,
        x: Arc<Tensor>,
    ) -> Result<(Vec<Arc<Tensor>>, usize), RuntimeError> {
        let device = self.device;
        let board = self.board;
        let (s, key, rank, n) = self.deposit(axes, &what, x)?;
        let mut s = board.wait_until(s, device, &what, |s| {
            s.slots
                .get(&key)
                .is_some_and(|slot| slot.parts.iter().all(Option::is_some))
        })?;
        // invariant: the slot stays until every member has fetched it, and we have not.
        let slot = s
            .slots
            .get_mut(&key)
            .expect("invariant: slot present until fetched");
        let parts: Vec<Arc<Tensor>> = slot.parts.iter().flatten().cloned().collect();
        slot.fetched += 1;
        if slot.fetched == n {
            s.slots.remove(&key);
        }
        Ok((parts, rank))
    }

    /// All-reduce through shared memory, in place: every member hands its buffer to the board;
    /// the last to arrive reduces all of them at once (`collectives::all_reduce_in_place`: each
    /// element read and written once per buffer, the work spread over the cores) while the
    /// others wait, then each takes its own buffer back. No allocation, no chunk copies.
    fn all_reduce_in_place(
        &mut self,
        axes: &[String],
        what: &str,
        x: Tensor,
        func: ReduceFn,
    ) -> Result<Tensor, RuntimeError> {
        let (device, board) = (self.device, self.board);
        let (mut s, key, rank, n) = self.deposit(axes, what, Arc::new(x))?;
        // invariant: the slot stays until every member has fetched it, and we have not.
        let slot = s.slots.get_mut(&key).expect("invariant: slot present");
        if slot.parts.iter().all(Option::is_some) {
            // The last to arrive: every other member is waiting, so the buffers are ours alone.
            let parts: Vec<Arc<Tensor>> = slot.parts.iter_mut().filter_map(Option::take).collect();
            drop(s);
            let mut bufs: Vec<Tensor> = parts
                .into_iter()
                .map(|p| Arc::try_unwrap(p).unwrap_or_else(|shared| (*shared).clone()))
                .collect();
            if let Err(m) = collectives::all_reduce_in_place(&mut bufs, func) {
                let msg = format!("{what}: {m}");
                board.fail(device, msg.clone());
                return Err(self.err(msg));
            }
            s = board.lock();
            let slot = s.slots.get_mut(&key).expect("invariant: slot present");
            for (p, b) in slot.parts.iter_mut().zip(bufs) {
                *p = Some(Arc::new(b));
            }
            slot.reduced = true;
            board.cv.notify_all();
        } else {
            s = board.wait_until(s, device, what, |s| {
                s.slots.get(&key).is_some_and(|slot| slot.reduced)
            })?;
        }
        let slot = s.slots.get_mut(&key).expect("invariant: slot present");
        let mine = slot.parts[rank]
            .take()
            .expect("invariant: each member takes its own once");
        slot.fetched += 1;
        if slot.fetched == n {
            s.slots.remove(&key);
        }
        drop(s);
        Ok(Arc::try_unwrap(mine).unwrap_or_else(|shared| (*shared).clone()))
    }

    fn finish<T>(&self, what: &str, r: Result<T, String>) -> Result<T, RuntimeError> {
        r.map_err(|m| self.err(format!("{what}: {m}")))
    }

    /// Exchanges `x` with the group along `axes`, checks every part has one type, and
    /// computes this device's result from the parts (in group order) and its own position.
    fn exchanged(
        &mut self,
        axes: &[String],
        what: String,
        x: Tensor,
        f: impl FnOnce(&[&Tensor], usize) -> Result<Tensor, String>,
    ) -> Result<Tensor, RuntimeError> {
        let (parts, r) = self.exchange(axes, what.clone(), Arc::new(x))?;
        let p = refs(&parts);
        self.finish(&what, collectives::check_same(&p).and_then(|()| f(&p, r)))
    }
}

impl ThreadComm<'_> {
    /// The Reduction Server's all-reduce: rank 0 hands the group's contributions to the
    /// reducer threads; every member waits for all chunks and copies them into its buffer.
    fn server_all_reduce(
        &mut self,
        axes: &[String],
        what: &str,
        parts: Vec<Arc<Tensor>>,
        r: usize,
        func: ReduceFn,
        shape: &[usize],
    ) -> Result<Tensor, RuntimeError> {
        self.finish(what, collectives::check_same(&refs(&parts)))?;
        let g = group(&self.mesh, self.position, axes).map_err(|m| self.err(m))?;
        let members: Vec<usize> = g.members.iter().map(|&p| self.globals[p]).collect();
        // exchange() counted this call; the job shares its key.
        let seq = self.calls.get(&members).map_or(0, |c| c - 1);
        let key = (members, seq);
        let n = parts.len();
        let own = Arc::clone(&parts[r]);
        let mut s = self.board.lock();
        if r == 0 {
            let len = parts[0].len();
            s.jobs.insert(
                key.clone(),
                Job {
                    parts,
                    func,
                    len,
                    results: vec![None; self.board.reducers],
                    fetched: 0,
                },
            );
            for j in 0..self.board.reducers {
                s.tasks.push_back((key.clone(), j));
            }
            self.board.cv.notify_all();
        } else {
            drop(parts);
        }
        let mut s = self.board.wait_until(s, self.device, what, |s| {
            s.jobs
                .get(&key)
                .is_some_and(|j| j.results.iter().all(Option::is_some))
        })?;
        // invariant: the job stays until every member has fetched it, and we have not.
        let job = s
            .jobs
            .get_mut(&key)
            .expect("invariant: job present until fetched");
        let chunks: Vec<Arc<Tensor>> = job.results.iter().flatten().cloned().collect();
        job.fetched += 1;
        if job.fetched == n {
            s.jobs.remove(&key);
        }
        drop(s);
        let c = refs(&chunks);
        let target = Arc::try_unwrap(own).unwrap_or_else(|shared| (*shared).clone());
        match collectives::concat_flat_into(&c, target) {
            Some(t) => Ok(t),
            None => self.finish(what, collectives::concat_flat(&c, shape)),
        }
    }
}

fn refs(parts: &[Arc<Tensor>]) -> Vec<&Tensor> {
    parts.iter().map(|p| p.as_ref()).collect()
}

impl Communicator for ThreadComm<'_> {
    fn position(&self) -> usize {
        self.position
    }

    fn mesh(&self) -> &Mesh {
        &self.mesh
    }

    fn all_reduce(
        &mut self,
        x: Tensor,
        axes: &[String],
        func: ReduceFn,
    ) -> Result<Tensor, RuntimeError> {
        let what = format!("all_reduce({}) of {} over {axes:?}", func.name(), x.ty());
        if self.board.reducers > 0 {
            let shape = x.shape().to_vec();
            let (parts, r) = self.exchange(axes, what.clone(), Arc::new(x))?;
            if parts.len() > 1 {
                return self.server_all_reduce(axes, &what, parts, r, func, &shape);
            }
            let only = Arc::clone(&parts[0]);
            drop(parts);
            return Ok(Arc::try_unwrap(only).unwrap_or_else(|shared| (*shared).clone()));
        }
        self.all_reduce_in_place(axes, &what, x, func)
    }

    fn all_gather(
        &mut self,
        x: Tensor,
        dim: usize,
        axes: &[String],
    ) -> Result<Tensor, RuntimeError> {
        let what = format!("all_gather(dim {dim}) of {} over {axes:?}", x.ty());
        self.exchanged(axes, what, x, |p, _| collectives::concat(p, dim))
    }

    fn reduce_scatter(
        &mut self,
        x: Tensor,
        dim: usize,
        axes: &[String],
        func: ReduceFn,
    ) -> Result<Tensor, RuntimeError> {
        let what = format!(
            "reduce_scatter({}, dim {dim}) of {} over {axes:?}",
            func.name(),
            x.ty()
        );
        self.exchanged(axes, what, x, |p, r| {
            collectives::reduce_scatter(p, dim, func, r)
        })
    }

    fn all_to_all(
        &mut self,
        x: Tensor,
        split_dim: usize,
        concat_dim: usize,
        axes: &[String],
    ) -> Result<Tensor, RuntimeError> {
        let what = format!(
            "all_to_all(split {split_dim}, concat {concat_dim}) of {} over {axes:?}",
            x.ty()
        );
        self.exchanged(axes, what, x, |p, r| {
            collectives::all_to_all(p, split_dim, concat_dim, r)
        })
    }

    fn collective_permute(
        &mut self,
        x: Tensor,
        axes: &[String],
        pairs: &[(u64, u64)],
    ) -> Result<Tensor, RuntimeError> {
        let what = format!("collective_permute({pairs:?}) of {} over {axes:?}", x.ty());
        self.exchanged(axes, what, x, |p, r| collectives::permute(p, pairs, r))
    }

    fn send(&mut self, x: Tensor, to: usize, tag: &str) -> Result<(), RuntimeError> {
        let mut s = self.board.lock();
        if let Some(f) = &s.failed {
            return Err(Board::aborted(self.device, f));
        }
        s.mail
            .entry((self.device, to, tag.to_string()))
            .or_default()
            .push_back(x);
        drop(s);
        self.board.cv.notify_all();
        Ok(())
    }

    fn recv(&mut self, from: usize, tag: &str, ty: &TensorType) -> Result<Tensor, RuntimeError> {
        let key = (from, self.device, tag.to_string());
        let what = format!("recv `{tag}` from device {from}");
        let s = self.board.lock();
        let mut s = self.board.wait_until(s, self.device, &what, |s| {
            s.mail.get(&key).is_some_and(|q| !q.is_empty())
        })?;
        // invariant: wait_until returned because the queue is non-empty.
        let t = s
            .mail
            .get_mut(&key)
            .and_then(VecDeque::pop_front)
            .expect("invariant: a message is queued");
        drop(s);
        if &t.ty() != ty {
            return Err(self.err(format!(
                "{what}: expected {ty}, device {from} sent {}",
                t.ty()
            )));
        }
        Ok(t)
    }
}

pub(crate) fn panic_message(p: Box<dyn std::any::Any + Send>) -> String {
    match p.downcast::<String>() {
        Ok(s) => *s,
        Err(p) => p
            .downcast_ref::<&str>()
            .map_or_else(|| "unknown panic".to_string(), |s| s.to_string()),
    }
}

/// Runs `f` once per device, each on its own thread with its own [`ThreadComm`], and returns
/// each device's result (indexed by global device id). `stages` lists each stage's mesh with
/// the global ids of its positions; together they must use the ids `0..n` once each (one stage
/// covering `0..n` is the SPMD case). A device that errors or panics makes the others' waits
/// end with [`RuntimeError::Aborted`]; no wait lasts longer than `timeout`.
pub fn launch<T, F>(
    stages: &[(Mesh, Vec<usize>)],
    timeout: Duration,
    f: F,
) -> Result<Vec<Result<T, RuntimeError>>, RuntimeError>
where
    T: Send,
    F: Fn(&mut ThreadComm) -> Result<T, RuntimeError> + Sync,
{
    launch_with(stages, timeout, AllReduceAlgorithm::Ring, f)
}

/// [`launch`] with a choice of all-reduce algorithm; the Reduction Server's reducers run on
/// threads of their own beside the devices' and hold no device.
pub fn launch_with<T, F>(
    stages: &[(Mesh, Vec<usize>)],
    timeout: Duration,
    algorithm: AllReduceAlgorithm,
    f: F,
) -> Result<Vec<Result<T, RuntimeError>>, RuntimeError>
where
    T: Send,
    F: Fn(&mut ThreadComm) -> Result<T, RuntimeError> + Sync,
{
    let reducers = match algorithm {
        AllReduceAlgorithm::Ring => 0,
        AllReduceAlgorithm::ReductionServer { reducers: 0 } => {
            return Err(RuntimeError::Invalid(
                "the Reduction Server needs at least one reducer".into(),
            ))
        }
        AllReduceAlgorithm::ReductionServer { reducers } => reducers,
    };
    let total: usize = stages.iter().map(|(_, d)| d.len()).sum();
    let mut placement = vec![None; total];
    for (k, (mesh, devices)) in stages.iter().enumerate() {
        if devices.len() != mesh.devices.len() {
            return Err(RuntimeError::Invalid(format!(
                "stage {k}: mesh `{mesh}` has {} devices, {} ids were given",
                mesh.devices.len(),
                devices.len()
            )));
        }
        for (p, &d) in devices.iter().enumerate() {
            match placement.get_mut(d) {
                Some(slot @ None) => *slot = Some((k, p)),
                _ => {
                    return Err(RuntimeError::Invalid(format!(
                        "stage {k}: device id {d} is used twice or is not below the device count {total}"
                    )))
                }
            }
        }
    }
    let board = Board::new(timeout, reducers);
    let (board, f) = (&board, &f);
    std::thread::scope(|scope| {
        for j in 0..reducers {
            let spawned = std::thread::Builder::new()
                .name(format!("shardc-reducer-{j}"))
                .spawn_scoped(scope, move || board.serve(j));
            if let Err(e) = spawned {
                board.fail(0, format!("cannot start reducer thread {j}: {e}"));
            }
        }
        let handles: Vec<_> = placement
            .iter()
            .enumerate()
            .map(|(device, place)| {
                // invariant: every id below `total` was placed (the counts add up, none twice).
                let (k, position) = place.expect("invariant: every device is placed");
                let (mesh, globals) = &stages[k];
                let body = move || {
                    let mut comm = ThreadComm {
                        board,
                        device,
                        mesh: mesh.clone(),
                        globals: globals.clone(),
                        position,
                        calls: HashMap::new(),
                    };
                    let r = catch_unwind(AssertUnwindSafe(|| f(&mut comm))).unwrap_or_else(|p| {
                        Err(RuntimeError::Device {
                            device,
                            message: format!("panicked: {}", panic_message(p)),
                        })
                    });
                    if let Err(e) = &r {
                        if !matches!(e, RuntimeError::Aborted { .. }) {
                            board.fail(device, e.to_string());
                        }
                    }
                    r
                };
                std::thread::Builder::new()
                    .name(format!("shardc-device-{device}"))
                    .spawn_scoped(scope, body)
                    .map_err(|e| {
                        let msg = format!("cannot start a thread: {e}");
                        board.fail(device, msg.clone());
                        RuntimeError::Device {
                            device,
                            message: msg,
                        }
                    })
            })
            .collect();
        let results = handles
            .into_iter()
            .enumerate()
            .map(|(device, h)| {
                h.and_then(|h| {
                    h.join().unwrap_or_else(|p| {
                        Err(RuntimeError::Device {
                            device,
                            message: format!("panicked: {}", panic_message(p)),
                        })
                    })
                })
            })
            .collect();
        board.lock().shutdown = true;
        board.cv.notify_all();
        Ok(results)
    })
}
