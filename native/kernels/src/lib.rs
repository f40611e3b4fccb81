//! Driftline's optional native detector kernels (`detectors._kernels`).
//!
//! Two steps of the sequential feature-drift detector that numpy does in several passes over a batch
//! (or one call per feature) and that a single pass does at memory speed:
//!
//! - `mid_ranks`: for every value of a (rows x features) batch, how many values of its feature's
//!   sorted reference lie below it, plus half of those equal to it -- what `np.searchsorted` left and
//!   right give, to the bit;
//! - `cusum_update`: a bank of one-sided CUSUMs (Lindley's recursion) over a (rows x statistics)
//!   batch of increments, quantised to integers exactly as numpy's `rint` does, stopping after the
//!   first row where one active statistic crosses its threshold.
//!
//! The callers (`detectors/kernels.py`) check shapes and dtypes and keep a numpy path that gives the
//! same results; every array here is C-contiguous and read or written in place.

use pyo3::buffer::PyBuffer;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// The buffer's items as a slice (the caller keeps the buffer alive and checked its layout).
fn items<T: pyo3::buffer::Element>(b: &PyBuffer<T>) -> PyResult<&[T]> {
    if !b.is_c_contiguous() {
        return Err(PyValueError::new_err("arrays must be C-contiguous"));
    }
    // SAFETY: a C-contiguous buffer of item_count() items of T, alive while `b` is.
    Ok(unsafe { std::slice::from_raw_parts(b.buf_ptr() as *const T, b.item_count()) })
}

/// As [`items`], writable.
fn items_mut<T: pyo3::buffer::Element>(b: &mut PyBuffer<T>) -> PyResult<&mut [T]> {
    if b.readonly() {
        return Err(PyValueError::new_err("output arrays must be writable"));
    }
    let s = items(b)?;
    // SAFETY: as above, and the buffer is writable; the caller passes distinct arrays.
    Ok(unsafe { std::slice::from_raw_parts_mut(s.as_ptr() as *mut T, s.len()) })
}

/// Mid-rank of `v` in the sorted, NaN-free `r`: (#below + #below-or-equal) / 2. A NaN sorts after
/// every number, as in numpy: its mid-rank is `r.len()`. `index` narrows the search.
#[inline]
fn mid_rank(r: &[f64], index: &Buckets, v: f64) -> f64 {
    if v.is_nan() {
        return r.len() as f64;
    }
    let left = index.below(r, v);
    let right = if left < r.len() && r[left] == v {
        below(r, v, true)
    } else {
        left
    };
    (left + right) as f64 / 2.0
}

/// An index of a sorted reference: the value range cut into equal buckets, and for each bucket's lower
/// edge how many values lie below it (one merge walk to build). A value's bucket then bounds its
/// search to the few reference values in that bucket. Float rounding may put a value in a neighbouring
/// bucket; the bounds are checked, and an unchecked value is searched in the whole reference.
struct Buckets {
    lo: f64,
    per_unit: f64,     // buckets per unit of value
    first: Vec<usize>, // first[b]: how many values lie below bucket b's lower edge; first[len - 1] = n
}

impl Buckets {
    fn new(r: &[f64]) -> Buckets {
        let n = r.len();
        let (lo, hi) = if n > 0 { (r[0], r[n - 1]) } else { (0.0, 0.0) };
        if n < 16 || hi <= lo || !(hi - lo).is_finite() {
            return Buckets {
                lo,
                per_unit: 0.0,
                first: vec![0, n],
            };
        }
        let count = n.next_power_of_two();
        let width = (hi - lo) / count as f64;
        let mut first = Vec::with_capacity(count + 1);
        let mut at = 0;
        for b in 0..count {
            let edge = lo + b as f64 * width;
            while at < n && r[at] < edge {
                at += 1;
            }
            first.push(at);
        }
        first.push(n);
        Buckets {
            lo,
            per_unit: count as f64 / (hi - lo),
            first,
        }
    }

    /// How many of `r` (the reference this indexes) are below `v` (not NaN).
    #[inline]
    fn below(&self, r: &[f64], v: f64) -> usize {
        let last = self.first.len() - 2;
        let b = ((v - self.lo) * self.per_unit).max(0.0).min(last as f64) as usize;
        let (start, end) = (self.first[b], self.first[b + 1]);
        if (start == 0 || r[start - 1] < v) && (end == r.len() || r[end] >= v) {
            start + below(&r[start..end], v, false)
        } else {
            below(r, v, false)
        }
    }
}

/// How many of the sorted `r` are below `v` (`or_equal`: at most `v`): a binary search without
/// branches on the data (a conditional move per step), so that a batch's unpredictable values cost
/// no mispredictions.
#[inline]
fn below(r: &[f64], v: f64, or_equal: bool) -> usize {
    if r.is_empty() {
        return 0;
    }
    let (mut base, mut n) = (0usize, r.len());
    while n > 1 {
        let half = n / 2;
        let m = base + half;
        let e = r[m];
        base = if e < v || (or_equal && e == v) {
            m
        } else {
            base
        };
        n -= half;
    }
    let e = r[base];
    base + (e < v || (or_equal && e == v)) as usize
}

/// `out[i, j]` = mid-rank of `x[i, j]` in `refs[j]` (sorted, no NaN), for a (rows x features) `x`.
/// A feature at a time (its reference and index stay in cache), each value searched within its
/// bucket of the reference's index ([`Buckets`]).
#[pyfunction]
fn mid_ranks(
    py: Python<'_>,
    refs: Vec<PyBuffer<f64>>,
    x: PyBuffer<f64>,
    mut out: PyBuffer<f64>,
) -> PyResult<()> {
    let features = refs.len();
    let xs = items(&x)?;
    let os = items_mut(&mut out)?;
    if std::ptr::eq(os.as_ptr(), xs.as_ptr()) {
        return Err(PyValueError::new_err("out must not be x"));
    }
    if os.len() != xs.len() || (features == 0 && !xs.is_empty()) {
        return Err(PyValueError::new_err("x and out must have the same shape"));
    }
    if features == 0 {
        return Ok(());
    }
    if xs.len() % features != 0 {
        return Err(PyValueError::new_err(
            "x must have one column per reference",
        ));
    }
    let rs = refs.iter().map(items).collect::<PyResult<Vec<&[f64]>>>()?;
    let rows = xs.len() / features;
    py.allow_threads(|| {
        for (j, r) in rs.iter().enumerate() {
            let index = Buckets::new(r);
            for i in 0..rows {
                os[i * features + j] = mid_rank(r, &index, xs[i * features + j]);
            }
        }
    });
    Ok(())
}

/// One batch of a CUSUM bank: `inc` is (rows x k) increments, `cols` the active statistics
/// (ascending), `values` / `run_start` their state (updated in place), `h` the quantised thresholds.
/// Each active statistic takes `S = max(0, S + rint(x * scale))` row by row; a statistic at zero
/// starts a new run at the next row. Returns None, or (statistic, batch row, value) of the first alarm
/// (`S > h`): the earliest row, then the lowest statistic; every statistic has then taken that row
/// and no other.
#[pyfunction]
#[allow(clippy::too_many_arguments)]
fn cusum_update(
    py: Python<'_>,
    inc: PyBuffer<f64>,
    cols: PyBuffer<i64>,
    mut values: PyBuffer<i64>,
    mut run_start: PyBuffer<i64>,
    h: PyBuffer<i64>,
    first_row: i64,
    scale: f64,
) -> PyResult<Option<(i64, i64, i64)>> {
    let xs = items(&inc)?;
    let cs = items(&cols)?;
    let vs = items_mut(&mut values)?;
    let rs = items_mut(&mut run_start)?;
    if std::ptr::eq(vs.as_ptr(), rs.as_ptr()) {
        return Err(PyValueError::new_err(
            "values and run_start must be distinct arrays",
        ));
    }
    let hs = items(&h)?;
    let k = vs.len();
    if rs.len() != k || hs.len() != k || (k == 0 && !xs.is_empty()) || (k > 0 && xs.len() % k != 0)
    {
        return Err(PyValueError::new_err(
            "inc must be (rows x k) and values, run_start, h of size k",
        ));
    }
    if cs.iter().any(|&c| c < 0 || c as usize >= k) || cs.windows(2).any(|w| w[0] >= w[1]) {
        return Err(PyValueError::new_err(
            "cols must be ascending statistics of the bank",
        ));
    }
    if k == 0 {
        return Ok(None);
    }
    let rows = xs.len() / k;
    let found = py.allow_threads(|| {
        for i in 0..rows {
            let row = &xs[i * k..(i + 1) * k];
            let next = first_row + i as i64 + 1;
            let mut over = false;
            if cs.len() == k {
                // every statistic: in step over the row and the state
                over = dense_row(row, vs, rs, hs, next, scale);
            } else {
                for &c in cs {
                    let c = c as usize;
                    let s = vs[c].wrapping_add(rint(row[c] * scale)).max(0);
                    vs[c] = s;
                    rs[c] = if s == 0 { next } else { rs[c] };
                    over |= s > hs[c];
                }
            }
            if over {
                // the lowest active statistic over its threshold in this row
                let c = cs.iter().map(|&c| c as usize).find(|&c| vs[c] > hs[c]);
                return c.map(|c| (c as i64, i as i64, vs[c]));
            }
        }
        None
    });
    Ok(found)
}

/// One row of increments for every statistic of the bank; whether one is over its threshold. With
/// AVX2 when the CPU has it (chosen at run time: the build stays portable), four statistics a step:
/// the same integer and IEEE operations, so the same results.
#[inline]
fn dense_row(
    row: &[f64],
    vs: &mut [i64],
    rs: &mut [i64],
    hs: &[i64],
    next: i64,
    scale: f64,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2 (checked just above).
            return unsafe { dense_row_avx2(row, vs, rs, hs, next, scale) };
        }
    }
    dense_row_any(row, vs, rs, hs, next, scale)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn dense_row_avx2(
    row: &[f64],
    vs: &mut [i64],
    rs: &mut [i64],
    hs: &[i64],
    next: i64,
    scale: f64,
) -> bool {
    dense_row_any(row, vs, rs, hs, next, scale)
}

#[inline(always)]
fn dense_row_any(
    row: &[f64],
    vs: &mut [i64],
    rs: &mut [i64],
    hs: &[i64],
    next: i64,
    scale: f64,
) -> bool {
    let mut over = false;
    for (((&x, v), r), &h) in row.iter().zip(vs.iter_mut()).zip(rs.iter_mut()).zip(hs) {
        let s = v.wrapping_add(rint(x * scale)).max(0);
        *v = s;
        *r = if s == 0 { next } else { *r };
        over |= s > h;
    }
    over
}

/// `y` rounded to the nearest integer, ties to even (numpy's `rint`), as an i64. Below 2^51 in
/// magnitude by adding and subtracting 1.5 * 2^52 (the FPU rounds to nearest even): baseline x86-64
/// has no rounding instruction, and `round_ties_even` became a library call (~10 ns a value).
#[inline]
fn rint(y: f64) -> i64 {
    const MAGIC: f64 = 6_755_399_441_055_744.0; // 1.5 * 2^52
    if y.abs() < 2_251_799_813_685_248.0 {
        // 2^51
        ((y + MAGIC) - MAGIC) as i64
    } else {
        y.round_ties_even() as i64
    }
}

#[pymodule]
fn _kernels(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(mid_ranks, m)?)?;
    m.add_function(wrap_pyfunction!(cusum_update, m)?)?;
    Ok(())
}
