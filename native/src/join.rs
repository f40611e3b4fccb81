//! The label join's state and merge, step for step as `stream_processors/core/join.py`'s
//! `LabelJoiner` (the reference: its docstring says what the join does and why). The Python
//! subclass `NativeJoiner` (`stream_processors/core/join_native.py`) builds the scored events and
//! pickles this state in `LabelJoiner`'s format, so checkpoints move freely between the two.
//!
//! Ids are `Arc<str>`, shared by each table and its merge-order queue; the tables hash with
//! foldhash's per-process random seed (ids come from producers).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;

use foldhash::fast::RandomState;
use pyo3::exceptions::{PyIndexError, PyValueError};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PySet, PyString, PyTuple};

type Id = Arc<str>;
type Map<V> = HashMap<Id, V, RandomState>;

const COUNTERS: [&str; 11] = [
    "predictions",
    "labels",
    "joined",
    "duplicate_predictions",
    "duplicate_labels",
    "late_predictions",
    "late_labels",
    "orphan_labels",
    "expired_unlabelled",
    "evicted",
    "forced",
];
const PREDICTIONS: usize = 0;
const LABELS: usize = 1;
const JOINED: usize = 2;
const DUP_PREDICTIONS: usize = 3;
const DUP_LABELS: usize = 4;
const LATE_PREDICTIONS: usize = 5;
const LATE_LABELS: usize = 6;
const ORPHANS: usize = 7;
const EXPIRED: usize = 8;
const EVICTED: usize = 9;
const FORCED: usize = 10;

/// A prediction read: the object the caller handed in, its arrival index and event time.
struct Pred {
    p: Py<PyAny>,
    index: i64,
    t: f64,
}

/// A label read: the object, and its event time.
struct Lab {
    obj: Py<PyAny>,
    t: f64,
}

/// `(python_min(a, b))`: `b` only if `b < a` (as Python's `min(a, b)`).
fn pmin(a: f64, b: f64) -> f64 {
    if b < a {
        b
    } else {
        a
    }
}

fn id_of(obj: &Bound<'_, PyAny>) -> PyResult<Id> {
    let py = obj.py();
    let pid = obj.getattr(intern!(py, "prediction_id"))?;
    Ok(Arc::from(pid.downcast::<PyString>()?.to_str()?))
}

#[pyclass(subclass, module = "driftline._native")]
pub struct Join {
    #[pyo3(get)]
    lateness_s: f64,
    #[pyo3(get)]
    max_pending: usize,
    unmerged_preds: VecDeque<(Id, Pred)>,
    unmerged_ids: HashSet<Id, RandomState>,
    unmerged_labels: VecDeque<(Id, Lab)>,
    #[pyo3(get)]
    arrival_watermark: f64,
    pending_order: VecDeque<Id>,
    orphan_order: VecDeque<Id>,
    closed_order: VecDeque<Id>,
    closed_at: VecDeque<(f64, i64)>,
    due: f64,
    pending: Map<Pred>,
    orphans: Map<Lab>,
    closed: Map<bool>,
    #[pyo3(get)]
    watermark: f64,
    #[pyo3(get)]
    counts: Py<PyDict>,
    c: [i64; 11],
    rounded: (f64, f64),
    merged: Vec<Py<PyAny>>,
    joins_before: Vec<i64>,
    health: Vec<i64>,
}

impl Join {
    fn horizon_(&self) -> f64 {
        self.watermark - self.lateness_s
    }

    fn load_counts(&mut self, py: Python<'_>) -> PyResult<()> {
        let d = self.counts.bind(py);
        for (k, name) in COUNTERS.iter().enumerate() {
            self.c[k] = match d.get_item(name)? {
                Some(v) => v.extract()?,
                None => 0,
            };
        }
        Ok(())
    }

    fn store_counts(&self, py: Python<'_>) -> PyResult<()> {
        let d = self.counts.bind(py);
        for (k, name) in COUNTERS.iter().enumerate() {
            d.set_item(name, self.c[k])?;
        }
        Ok(())
    }

    /// The earlier of the two inputs' next events while both have one (`last`: while either has
    /// one); the joins made, as (prediction, label, label's event time, arrival index).
    fn merge(&mut self, py: Python<'_>, last: bool) -> Vec<(Py<PyAny>, Lab, i64)> {
        let mut out = Vec::new();
        self.merged.clear();
        self.joins_before.clear();
        self.health.clear();
        let (cap, lateness) = (self.max_pending, self.lateness_s);
        let limit = if last { 0 } else { cap };
        let mut forced = 0;
        loop {
            let (np, nl) = (self.unmerged_preds.len(), self.unmerged_labels.len());
            let take = if np > 0 && nl > 0 {
                self.unmerged_preds[0].1.t <= self.unmerged_labels[0].1.t
            } else if np > limit || nl > limit {
                forced += 1;
                np > 0
            } else {
                break;
            };
            let (pid, pred, lab) = if take {
                let (pid, pred) = self.unmerged_preds.pop_front().expect("a prediction");
                self.unmerged_ids.remove(&pid);
                self.merged.push(pred.p.clone_ref(py));
                self.joins_before.push(out.len() as i64);
                let t = pred.t;
                if t > self.watermark {
                    self.watermark = t;
                    if t - lateness > self.due {
                        self.expire();
                    }
                }
                self.c[PREDICTIONS] += 1;
                let lab = if self.orphans.is_empty() {
                    None
                } else {
                    self.orphans.remove(&pid)
                };
                match lab {
                    Some(lab) => (pid, pred, lab),
                    None => {
                        self.pending.insert(pid.clone(), pred);
                        self.pending_order.push_back(pid);
                        if t < self.due {
                            self.due = t;
                        }
                        if self.pending.len() > cap {
                            self.expire();
                        }
                        continue;
                    }
                }
            } else {
                let (pid, lab) = self.unmerged_labels.pop_front().expect("a label");
                self.c[LABELS] += 1;
                match self.pending.remove(&pid) {
                    Some(pred) => (pid, pred, lab),
                    None => {
                        self.unjoined(pid, lab);
                        continue;
                    }
                }
            };
            self.c[JOINED] += 1;
            self.close(pid, true);
            let c = &self.c;
            self.health.extend([
                c[JOINED],
                c[PREDICTIONS],
                c[LATE_LABELS],
                c[ORPHANS],
                c[EXPIRED],
                self.pending.len() as i64,
            ]);
            out.push((pred.p, lab, pred.index));
        }
        if !last {
            self.c[FORCED] += forced;
        }
        out
    }

    fn unjoined(&mut self, pid: Id, lab: Lab) {
        if let Some(&joined) = self.closed.get(&pid) {
            self.c[if joined { DUP_LABELS } else { LATE_LABELS }] += 1;
        } else if self.orphans.contains_key(&pid) {
            self.c[DUP_LABELS] += 1;
        } else if lab.t < self.horizon_() {
            self.c[LATE_LABELS] += 1;
        } else {
            self.due = pmin(self.due, lab.t);
            self.orphans.insert(pid.clone(), lab);
            self.orphan_order.push_back(pid);
            if self.orphans.len() > self.max_pending {
                self.expire();
            }
        }
    }

    fn close(&mut self, pid: Id, joined: bool) {
        self.closed.insert(pid.clone(), joined);
        self.closed_order.push_back(pid);
        let wm = self.watermark;
        if self.rounded.0 != wm {
            let q = self.lateness_s / 64.0;
            self.rounded = (
                wm,
                if wm.is_finite() {
                    (wm / q).ceil() * q
                } else {
                    wm
                },
            );
        }
        let wm = self.rounded.1;
        match self.closed_at.back_mut() {
            Some(run) if run.0 == wm => run.1 += 1,
            _ => {
                self.closed_at.push_back((wm, 1));
                self.due = pmin(self.due, wm);
            }
        }
    }

    fn expire(&mut self) {
        let (horizon, cap) = (self.horizon_(), self.max_pending);
        while let Some(front) = self.pending_order.front() {
            let t = self.pending.get(front).map(|p| p.t);
            if matches!(t, Some(t) if t >= horizon) && self.pending.len() <= cap {
                break;
            }
            let pid = self.pending_order.pop_front().expect("a front");
            if let Some(t) = t {
                self.pending.remove(&pid);
                self.c[if t < horizon { EXPIRED } else { EVICTED }] += 1;
                self.close(pid, false);
            }
        }
        while let Some(front) = self.orphan_order.front() {
            let t = self.orphans.get(front).map(|l| l.t);
            if matches!(t, Some(t) if t >= horizon) && self.orphans.len() <= cap {
                break;
            }
            let pid = self.orphan_order.pop_front().expect("a front");
            if self.orphans.remove(&pid).is_some() {
                self.c[ORPHANS] += 1;
            }
        }
        self.forget(horizon);
        let first_run = self.closed_at.front().map_or(f64::INFINITY, |r| r.0);
        self.due = pmin(self.front_time(), first_run);
    }

    fn front_time(&self) -> f64 {
        let first = self
            .pending_order
            .front()
            .and_then(|id| self.pending.get(id));
        let lab = self
            .orphan_order
            .front()
            .and_then(|id| self.orphans.get(id));
        pmin(
            first.map_or(f64::INFINITY, |p| p.t),
            lab.map_or(f64::INFINITY, |l| l.t),
        )
    }

    fn forget(&mut self, horizon: f64) {
        let mut drop = 0i64;
        while self.closed_at.front().is_some_and(|run| run.0 < horizon) {
            drop += self.closed_at.pop_front().expect("a run").1;
        }
        let mut excess = self.closed_order.len() as i64 - drop - 2 * self.max_pending as i64;
        while excess > 0 {
            let Some(run) = self.closed_at.front_mut() else {
                break;
            };
            let take = excess.min(run.1);
            run.1 -= take;
            drop += take;
            excess -= take;
            if run.1 == 0 {
                self.closed_at.pop_front();
            }
        }
        let n = (drop.max(0) as usize).min(self.closed_order.len());
        for _ in 0..n {
            let pid = self.closed_order.pop_front().expect("an id");
            self.closed.remove(&pid);
        }
    }

    fn is_new_(&self, pid: &str) -> bool {
        !(self.unmerged_ids.contains(pid)
            || self.pending.contains_key(pid)
            || self.closed.contains_key(pid))
    }

    /// The joins as four lists: predictions, labels (their values), label times, arrival indexes.
    fn joins<'py>(&mut self, py: Python<'py>, last: bool) -> PyResult<Bound<'py, PyTuple>> {
        let out = self.merge(py, last);
        self.store_counts(py)?;
        let n = out.len();
        let (mut preds, mut labels, mut times, mut indexes) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (p, lab, index) in out {
            preds.push(p);
            labels.push(lab.obj.bind(py).getattr(intern!(py, "label"))?);
            times.push(lab.t);
            indexes.push(index);
        }
        PyTuple::new(
            py,
            [
                PyList::new(py, preds)?.into_any(),
                PyList::new(py, labels)?.into_any(),
                PyList::new(py, times)?.into_any(),
                PyList::new(py, indexes)?.into_any(),
            ],
        )
    }
}

/// A queue of ids as two byte strings: their UTF-8 bytes end to end, and each one's length (u32,
/// little-endian) -- pickled as fast as copied, where a string object per id is not.
fn pack<'py>(py: Python<'py>, ids: &VecDeque<Id>) -> PyResult<Bound<'py, PyTuple>> {
    let (mut blob, mut lengths) = (Vec::new(), Vec::with_capacity(4 * ids.len()));
    for id in ids {
        blob.extend_from_slice(id.as_bytes());
        lengths.extend_from_slice(&(id.len() as u32).to_le_bytes());
    }
    PyTuple::new(py, [PyBytes::new(py, &blob), PyBytes::new(py, &lengths)])
}

/// The ids `pack` packed.
fn unpack(packed: &Bound<'_, PyAny>) -> PyResult<VecDeque<Id>> {
    let bad = || PyValueError::new_err("join state: packed ids that do not add up");
    let (blob, lengths) = (packed.get_item(0)?, packed.get_item(1)?);
    let blob = blob.downcast::<PyBytes>()?.as_bytes();
    let lengths = lengths.downcast::<PyBytes>()?.as_bytes();
    let mut at = 0usize;
    let mut ids = VecDeque::with_capacity(lengths.len() / 4);
    for len in lengths.chunks(4) {
        let len = u32::from_le_bytes(len.try_into().map_err(|_| bad())?) as usize;
        let bytes = blob.get(at..at + len).ok_or_else(bad)?;
        ids.push_back(Arc::from(std::str::from_utf8(bytes).map_err(|_| bad())?));
        at += len;
    }
    if at != blob.len() {
        return Err(bad());
    }
    Ok(ids)
}

fn deque<'py, T: IntoPyObject<'py>, I: IntoIterator<Item = T>>(
    py: Python<'py>,
    items: I,
) -> PyResult<Bound<'py, PyAny>>
where
    I::IntoIter: ExactSizeIterator,
{
    let list = PyList::new(py, items)?;
    py.import("collections")?.getattr("deque")?.call1((list,))
}

#[pymethods]
impl Join {
    #[new]
    #[pyo3(signature = (lateness_s, max_pending = 1_000_000))]
    fn new(py: Python<'_>, lateness_s: f64, max_pending: i64) -> PyResult<Self> {
        if lateness_s.is_nan() || lateness_s <= 0.0 {
            return Err(PyValueError::new_err(format!(
                "lateness_s must be > 0, got {lateness_s}"
            )));
        }
        if max_pending < 1 {
            return Err(PyValueError::new_err(format!(
                "max_pending must be >= 1, got {max_pending}"
            )));
        }
        let counts = PyDict::new(py);
        for name in COUNTERS {
            counts.set_item(name, 0)?;
        }
        Ok(Join {
            lateness_s,
            max_pending: max_pending as usize,
            unmerged_preds: VecDeque::new(),
            unmerged_ids: HashSet::default(),
            unmerged_labels: VecDeque::new(),
            arrival_watermark: f64::NEG_INFINITY,
            pending_order: VecDeque::new(),
            orphan_order: VecDeque::new(),
            closed_order: VecDeque::new(),
            closed_at: VecDeque::new(),
            due: f64::NEG_INFINITY,
            pending: Map::default(),
            orphans: Map::default(),
            closed: Map::default(),
            watermark: f64::NEG_INFINITY,
            counts: counts.unbind(),
            c: [0; 11],
            rounded: (f64::NAN, f64::NAN),
            merged: Vec::new(),
            joins_before: Vec::new(),
            health: Vec::new(),
        })
    }

    /// The positions of the predictions to read, by version (`LabelJoiner.new_by_version`).
    fn new_by_version<'py>(
        &mut self,
        py: Python<'py>,
        preds: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyDict>> {
        self.load_counts(py)?;
        let horizon = self.arrival_watermark - self.lateness_s;
        let (pid_name, t_name) = (intern!(py, "prediction_id"), intern!(py, "event_time"));
        let version_name = intern!(py, "model_version");
        let by_version = PyDict::new(py);
        let mut seen: HashSet<String, RandomState> = HashSet::default();
        let mut last: Option<(Bound<'py, PyAny>, Bound<'py, PyList>)> = None; // (version, its list)
        let mut read = |pos: usize, p: Bound<'py, PyAny>| -> PyResult<()> {
            let pid_obj = p.getattr(pid_name)?;
            let pid = pid_obj.downcast::<PyString>()?.to_str()?;
            if seen.contains(pid) || !self.is_new_(pid) {
                self.c[DUP_PREDICTIONS] += 1;
                return Ok(());
            }
            if p.getattr(t_name)?.extract::<f64>()? < horizon {
                self.c[LATE_PREDICTIONS] += 1;
                return Ok(());
            }
            seen.insert(pid.to_owned());
            let version = p.getattr(version_name)?;
            if let Some((v, list)) = &last {
                if v.is(&version) || v.eq(&version)? {
                    return list.append(pos);
                }
            }
            let list = match by_version.get_item(&version)? {
                Some(list) => list.downcast_into::<PyList>()?,
                None => {
                    let list = PyList::empty(py);
                    by_version.set_item(&version, &list)?;
                    list
                }
            };
            list.append(pos)?;
            last = Some((version, list));
            Ok(())
        };
        let mut result = Ok(());
        for (pos, p) in preds.try_iter()?.enumerate() {
            result = p.and_then(|p| read(pos, p));
            if result.is_err() {
                break;
            }
        }
        self.store_counts(py)?;
        result.map(|_| by_version)
    }

    /// Read (prediction, arrival index) pairs; the joins the merge can now make (see `joins`).
    fn _add_predictions<'py>(
        &mut self,
        py: Python<'py>,
        items: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        self.load_counts(py)?;
        let lateness = self.lateness_s;
        let mut wm = self.arrival_watermark;
        let pid_name = intern!(py, "prediction_id");
        let t_name = intern!(py, "event_time");
        let mut result = Ok(());
        for item in items.try_iter()? {
            let read = (|| -> PyResult<()> {
                let item = item?;
                let item = item.downcast::<PyTuple>()?;
                let p = item.get_item(0)?;
                let pid_obj = p.getattr(pid_name)?;
                let pid = pid_obj.downcast::<PyString>()?.to_str()?;
                if !self.is_new_(pid) {
                    self.c[DUP_PREDICTIONS] += 1;
                    return Ok(());
                }
                let t: f64 = p.getattr(t_name)?.extract()?;
                if t < wm - lateness {
                    self.c[LATE_PREDICTIONS] += 1;
                    return Ok(());
                }
                if t > wm {
                    wm = t;
                }
                let index: i64 = item.get_item(1)?.extract()?;
                let id: Id = Arc::from(pid);
                self.unmerged_ids.insert(id.clone());
                self.unmerged_preds.push_back((
                    id,
                    Pred {
                        p: p.unbind(),
                        index,
                        t,
                    },
                ));
                Ok(())
            })();
            if read.is_err() {
                result = read;
                break;
            }
        }
        if let Err(e) = result {
            // as the Python join: the items before the bad one stay read, the watermark as it was
            self.store_counts(py)?;
            return Err(e);
        }
        self.arrival_watermark = wm;
        self.joins(py, false)
    }

    /// Read labels; the joins the merge can now make.
    fn _add_labels<'py>(
        &mut self,
        py: Python<'py>,
        labels: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        self.load_counts(py)?;
        let t_name = intern!(py, "event_time");
        let mut read = Vec::new();
        for lab in labels.try_iter()? {
            let lab = lab?;
            let t: f64 = lab.getattr(t_name)?.extract()?;
            read.push((
                id_of(&lab)?,
                Lab {
                    obj: lab.unbind(),
                    t,
                },
            ));
        }
        self.unmerged_labels.extend(read);
        self.joins(py, false)
    }

    /// Merge everything read, as if both inputs had ended.
    fn _drain<'py>(&mut self, py: Python<'py>) -> PyResult<Bound<'py, PyTuple>> {
        self.load_counts(py)?;
        self.joins(py, true)
    }

    fn is_new(&self, prediction_id: &str) -> bool {
        self.is_new_(prediction_id)
    }

    #[getter]
    fn pending(&self) -> usize {
        self.pending.len()
    }

    #[getter]
    fn waiting(&self) -> usize {
        self.unmerged_preds.len() + self.unmerged_labels.len()
    }

    fn unmerged(&self) -> (usize, usize) {
        (self.unmerged_preds.len(), self.unmerged_labels.len())
    }

    /// (pending, orphans, closed ids remembered).
    fn remembered(&self) -> (usize, usize, usize) {
        (self.pending.len(), self.orphans.len(), self.closed.len())
    }

    #[getter]
    fn horizon(&self) -> f64 {
        self.horizon_()
    }

    #[getter]
    fn arrival_horizon(&self) -> f64 {
        self.arrival_watermark - self.lateness_s
    }

    #[getter]
    fn merged<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, self.merged.iter().map(|p| p.clone_ref(py)))
    }

    #[getter]
    fn joins_before<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, &self.joins_before)
    }

    #[getter]
    fn health<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, &self.health)
    }

    fn health_at(&self, k: usize) -> PyResult<(i64, i64, i64, i64, i64, i64)> {
        match self.health.get(6 * k..6 * k + 6) {
            Some(h) => Ok((h[0], h[1], h[2], h[3], h[4], h[5])),
            None => Err(PyIndexError::new_err(format!(
                "no join {k} in the last call"
            ))),
        }
    }

    /// The state, as `LabelJoiner.__getstate__` gives it, its queues of ids packed (see `pack`).
    fn state<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let string = |id: &Id| PyString::new(py, id);
        let s = PyDict::new(py);
        let pair = |p: &Pred| -> PyResult<Bound<'py, PyTuple>> {
            let index = p.index.into_pyobject(py)?.into_any();
            PyTuple::new(py, [p.p.clone_ref(py).into_bound(py), index])
        };
        s.set_item("lateness_s", self.lateness_s)?;
        s.set_item("max_pending", self.max_pending)?;
        let preds: PyResult<Vec<_>> = self.unmerged_preds.iter().map(|(_, p)| pair(p)).collect();
        s.set_item("_unmerged_predictions", deque(py, preds?)?)?;
        let ids: Vec<_> = self.unmerged_ids.iter().map(string).collect();
        s.set_item("_unmerged_ids", PySet::new(py, ids)?)?;
        let labels = self
            .unmerged_labels
            .iter()
            .map(|(_, l)| l.obj.clone_ref(py));
        s.set_item("_unmerged_labels", deque(py, labels)?)?;
        s.set_item("arrival_watermark", self.arrival_watermark)?;
        // the merge-order queues -- the bulk of a state: every id closed within lateness_s, and
        // every id joined behind the oldest prediction still waiting -- packed (see pack)
        for (name, order) in [
            ("_pending_order", &self.pending_order),
            ("_orphan_order", &self.orphan_order),
            ("_closed_order", &self.closed_order),
        ] {
            s.set_item(format!("{name}_packed"), pack(py, order)?)?;
        }
        let runs: PyResult<Vec<_>> = self
            .closed_at
            .iter()
            .map(|&(wm, n)| {
                let n = n.into_pyobject(py)?.into_any();
                PyList::new(py, [wm.into_pyobject(py)?.into_any(), n])
            })
            .collect();
        s.set_item("_closed_at", deque(py, runs?)?)?;
        s.set_item("_due", self.due)?;
        let pending = PyDict::new(py);
        for (id, p) in &self.pending {
            pending.set_item(string(id), pair(p)?)?;
        }
        s.set_item("_pending", pending)?;
        let orphans = PyDict::new(py);
        for (id, l) in &self.orphans {
            orphans.set_item(string(id), l.obj.clone_ref(py))?;
        }
        s.set_item("_orphans", orphans)?;
        // the closed table: whether each closed id joined (2), expired (1) or is forgotten (0)
        let flags: Vec<u8> = (self.closed_order.iter())
            .map(|id| self.closed.get(id).map_or(0u8, |&joined| 1 + joined as u8))
            .collect();
        s.set_item("_closed_flags", PyBytes::new(py, &flags))?;
        s.set_item("watermark", self.watermark)?;
        s.set_item("counts", self.counts.bind(py).copy()?)?;
        Ok(s)
    }

    /// Take over a state as `LabelJoiner.__getstate__` gives it (after its `__setstate__`), or as
    /// `state` gives it.
    fn load_state(&mut self, state: &Bound<'_, PyDict>) -> PyResult<()> {
        let py = state.py();
        let get = |k: &str| -> PyResult<Bound<'_, PyAny>> {
            state
                .get_item(k)?
                .ok_or_else(|| PyValueError::new_err(format!("join state without {k}")))
        };
        let lateness_s: f64 = get("lateness_s")?.extract()?;
        let mut fresh = Join::new(py, lateness_s, get("max_pending")?.extract()?)?;
        let pred = |item: Bound<'_, PyAny>| -> PyResult<(Id, Pred)> {
            let item = item.downcast::<PyTuple>()?;
            let p = item.get_item(0)?;
            let t: f64 = p.getattr(intern!(py, "event_time"))?.extract()?;
            let index: i64 = item.get_item(1)?.extract()?;
            Ok((
                id_of(&p)?,
                Pred {
                    p: p.unbind(),
                    index,
                    t,
                },
            ))
        };
        let lab = |obj: Bound<'_, PyAny>| -> PyResult<(Id, Lab)> {
            let t: f64 = obj.getattr(intern!(py, "event_time"))?.extract()?;
            Ok((
                id_of(&obj)?,
                Lab {
                    obj: obj.unbind(),
                    t,
                },
            ))
        };
        let ids = |k: &str| -> PyResult<VecDeque<Id>> {
            get(k)?
                .try_iter()?
                .map(|i| Ok(Arc::from(i?.downcast::<PyString>()?.to_str()?)))
                .collect()
        };
        let key = |k: Bound<'_, PyAny>| -> PyResult<Id> {
            Ok(Arc::from(k.downcast::<PyString>()?.to_str()?))
        };
        for item in get("_unmerged_predictions")?.try_iter()? {
            fresh.unmerged_preds.push_back(pred(item?)?);
        }
        fresh.unmerged_ids = ids("_unmerged_ids")?.into_iter().collect();
        for obj in get("_unmerged_labels")?.try_iter()? {
            fresh.unmerged_labels.push_back(lab(obj?)?);
        }
        fresh.arrival_watermark = get("arrival_watermark")?.extract()?;
        if state.contains("_closed_flags")? {
            fresh.pending_order = unpack(&get("_pending_order_packed")?)?;
            fresh.orphan_order = unpack(&get("_orphan_order_packed")?)?;
            fresh.closed_order = unpack(&get("_closed_order_packed")?)?;
            let flags = get("_closed_flags")?;
            let flags = flags.downcast::<PyBytes>()?.as_bytes();
            if flags.len() != fresh.closed_order.len() {
                return Err(PyValueError::new_err("join state: a flag per closed id"));
            }
            for (id, &flag) in fresh.closed_order.iter().zip(flags) {
                if flag > 0 {
                    fresh.closed.insert(id.clone(), flag == 2);
                }
            }
        } else {
            fresh.pending_order = ids("_pending_order")?;
            fresh.orphan_order = ids("_orphan_order")?;
            fresh.closed_order = ids("_closed_order")?;
            for (id, joined) in get("_closed")?.downcast::<PyDict>()?.iter() {
                fresh.closed.insert(key(id)?, joined.extract()?);
            }
        }
        for run in get("_closed_at")?.try_iter()? {
            let run = run?;
            let n = run.get_item(1)?;
            let n = n
                .extract::<i64>()
                .or_else(|_| n.extract::<f64>().map(|f| f as i64))?;
            fresh.closed_at.push_back((run.get_item(0)?.extract()?, n));
        }
        fresh.due = get("_due")?.extract()?;
        for (k, item) in get("_pending")?.downcast::<PyDict>()?.iter() {
            fresh.pending.insert(key(k)?, pred(item)?.1);
        }
        for (k, obj) in get("_orphans")?.downcast::<PyDict>()?.iter() {
            fresh.orphans.insert(key(k)?, lab(obj)?.1);
        }
        fresh.watermark = get("watermark")?.extract()?;
        let counts = fresh.counts.bind(py);
        for (k, v) in get("counts")?.downcast::<PyDict>()?.iter() {
            counts.set_item(k, v)?;
        }
        *self = fresh;
        Ok(())
    }
}
