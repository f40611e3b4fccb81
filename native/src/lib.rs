//! Driftline's optional native decoder (`driftline._native`).
//!
//! `feature_columns` reads the `features` object of each prediction record in a batch straight into
//! columns, for a model version whose schema is known: a float column per numeric feature and a list
//! per categorical one. It takes only the plainest records -- every feature present, in the schema's
//! order, numbers and null for numeric features, strings without escapes and null for categorical
//! ones -- and names every other record, so that the caller decodes those the general way (msgspec),
//! which also says what is wrong with a bad one. For the records it
//! takes, the values are those msgspec gives: integers of up to 18 digits convert exactly as Python's
//! float(int) does, other numbers are parsed correctly rounded, and a number out of range is left to
//! msgspec.

mod join;

use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyList, PyString};

/// A cursor over one record's bytes. Every method returns None (or false) at the first byte it does
/// not expect: the batch then takes the general path.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Cursor<'a> {
    #[inline]
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    #[inline]
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.i < self.b.len() && self.b[self.i] == c {
            self.i += 1;
            true
        } else {
            false
        }
    }

    #[inline]
    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.b.get(self.i).copied()
    }

    /// `"name":` exactly (a schema name needs no escapes).
    #[inline]
    fn key(&mut self, name: &[u8]) -> bool {
        if !self.eat(b'"') {
            return false;
        }
        let end = self.i + name.len();
        if end >= self.b.len() || &self.b[self.i..end] != name || self.b[end] != b'"' {
            return false;
        }
        self.i = end + 1;
        self.eat(b':')
    }

    #[inline]
    fn null(&mut self) -> bool {
        self.ws();
        if self.b[self.i..].starts_with(b"null") {
            self.i += 4;
            true
        } else {
            false
        }
    }

    /// A JSON number as msgspec decodes it for a float field.
    ///
    /// The digits are summed while the grammar is checked. A decimal whose digits fit in 2^53 and whose
    /// power of ten is at most 22 either way is then one exact operation on two exact doubles, so it is
    /// correctly rounded (Clinger's fast path); any other takes `fast_float2`, also correctly rounded.
    fn number(&mut self) -> Option<f64> {
        self.ws();
        let (b, start) = (self.b, self.i);
        let mut i = start;
        let negative = b.get(i) == Some(&b'-');
        if negative {
            i += 1;
        }
        let digits_start = i;
        let mut w: u64 = 0; // the first 19 significant digits, as an integer
        let mut n_digits = 0usize; // significant digits read (leading zeros not counted)
        let scan = |i: usize, w: &mut u64, n: &mut usize| -> Option<usize> {
            let end = digits(b, i)?;
            for &c in &b[i..end] {
                if *n < 19 {
                    *w = *w * 10 + u64::from(c - b'0');
                }
                if *n > 0 || c != b'0' {
                    *n += 1;
                }
            }
            Some(end)
        };
        i = match b.get(i) {
            Some(b'0') => i + 1,
            _ => scan(i, &mut w, &mut n_digits)?,
        };
        let digits_end = i;
        let mut integer = true;
        let mut fraction = 0usize;
        if b.get(i) == Some(&b'.') {
            let end = scan(i + 1, &mut w, &mut n_digits)?;
            fraction = end - (i + 1);
            i = end;
            integer = false;
        }
        let mut exponent: i64 = 0;
        let mut exponent_digits = 0usize;
        if matches!(b.get(i), Some(b'e' | b'E')) {
            i += 1;
            let minus = b.get(i) == Some(&b'-');
            if matches!(b.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let end = digits(b, i)?;
            exponent_digits = end - i;
            for &c in &b[i..end] {
                exponent = (exponent * 10 + i64::from(c - b'0')).min(100_000);
            }
            if minus {
                exponent = -exponent;
            }
            i = end;
            integer = false;
        }
        self.i = i;
        if integer {
            if digits_end - digits_start > 18 {
                return None; // beyond i64: msgspec's own conversion decides
            }
            // as Python's float(int): the integer's sign, so "-0" is 0.0
            let v = w as i64;
            return Some((if negative { -v } else { v }) as f64);
        }
        let power = exponent - fraction as i64;
        if n_digits <= 19 && w <= (1 << 53) && (-22..=22).contains(&power) && exponent_digits < 7 {
            let m = w as f64;
            let v = if power >= 0 {
                m * POW10[power as usize]
            } else {
                m / POW10[(-power) as usize]
            };
            return Some(if negative { -v } else { v });
        }
        let v: f64 = fast_float2::parse(&b[start..i]).ok()?;
        if v.is_finite() {
            Some(v)
        } else {
            None
        }
    }

    /// A string without escapes or control characters, as its bytes (checked UTF-8 by the caller).
    fn plain_string(&mut self) -> Option<&'a [u8]> {
        if !self.eat(b'"') {
            return None;
        }
        let (b, start) = (self.b, self.i);
        while self.i < b.len() {
            let c = b[self.i];
            if c == b'"' {
                self.i += 1;
                return Some(&b[start..self.i - 1]);
            }
            if c == b'\\' || c < 0x20 {
                return None;
            }
            self.i += 1;
        }
        None
    }

    /// Any string (escapes allowed): only skipped, never read.
    fn skip_string(&mut self) -> Option<()> {
        if !self.eat(b'"') {
            return None;
        }
        while self.i < self.b.len() {
            match self.b[self.i] {
                b'"' => {
                    self.i += 1;
                    return Some(());
                }
                b'\\' => self.i += 2,
                _ => self.i += 1,
            }
        }
        None
    }

    /// Any JSON value, skipped (nested objects and arrays too, to a bounded depth).
    fn skip_value(&mut self, depth: u32) -> Option<()> {
        if depth > 64 {
            return None;
        }
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' => {
                self.i += 1;
                if self.eat(b'}') {
                    return Some(());
                }
                loop {
                    self.skip_string()?;
                    if !self.eat(b':') {
                        return None;
                    }
                    self.skip_value(depth + 1)?;
                    if self.eat(b'}') {
                        return Some(());
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b'[' => {
                self.i += 1;
                if self.eat(b']') {
                    return Some(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    if self.eat(b']') {
                        return Some(());
                    }
                    if !self.eat(b',') {
                        return None;
                    }
                }
            }
            b't' | b'f' | b'n' => {
                for lit in [&b"true"[..], b"false", b"null"] {
                    if self.b[self.i..].starts_with(lit) {
                        self.i += lit.len();
                        return Some(());
                    }
                }
                None
            }
            _ => self.number().map(|_| ()),
        }
    }
}

/// 10^0 ..= 10^22: each exact as a double.
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The end of a run of at least one ASCII digit starting at `i`; None if there is none.
fn digits(b: &[u8], i: usize) -> Option<usize> {
    let end = i + b[i.min(b.len())..]
        .iter()
        .take_while(|c| c.is_ascii_digit())
        .count();
    if end == i {
        None
    } else {
        Some(end)
    }
}

/// One record's values, in schema order within each kind.
struct Row<'a> {
    numeric: Vec<f64>,
    categorical: Vec<Option<&'a [u8]>>,
}

/// Reads one record's `features` object into `row`; None if the record is not of the plainest kind.
fn record<'a>(
    b: &'a [u8],
    names: &[Vec<u8>],
    is_numeric: &[bool],
    max_bytes: usize,
    row: &mut Row<'a>,
) -> Option<()> {
    row.numeric.clear();
    row.categorical.clear();
    let mut c = Cursor { b, i: 0 };
    if !c.eat(b'{') {
        return None;
    }
    let mut found = false;
    if !c.eat(b'}') {
        loop {
            c.ws();
            let key_start = c.i + 1;
            c.skip_string()?;
            let key = &b[key_start..c.i - 1];
            if !c.eat(b':') {
                return None;
            }
            if key == b"features" {
                if found {
                    return None; // a second features object: msgspec decides which counts
                }
                found = true;
                features(&mut c, names, is_numeric, max_bytes, row)?;
            } else {
                c.skip_value(0)?;
            }
            if c.eat(b'}') {
                break;
            }
            if !c.eat(b',') {
                return None;
            }
        }
    }
    c.ws();
    if !found || c.i != b.len() {
        return None;
    }
    Some(())
}

fn features<'a>(
    c: &mut Cursor<'a>,
    names: &[Vec<u8>],
    is_numeric: &[bool],
    max_bytes: usize,
    row: &mut Row<'a>,
) -> Option<()> {
    if !c.eat(b'{') {
        return None;
    }
    for (j, name) in names.iter().enumerate() {
        if j > 0 && !c.eat(b',') {
            return None;
        }
        if !c.key(name) {
            return None;
        }
        if is_numeric[j] {
            let v = if c.null() { f64::NAN } else { c.number()? };
            row.numeric.push(v);
        } else if c.null() {
            row.categorical.push(None);
        } else {
            let s = c.plain_string()?;
            // valid UTF-8 and short enough, else msgspec decides
            if s.len() > max_bytes || std::str::from_utf8(s).is_err() {
                return None;
            }
            row.categorical.push(Some(s));
        }
    }
    if c.eat(b'}') {
        Some(())
    } else {
        None
    }
}

/// What `feature_columns` returns: the numeric buffer, the categorical lists, the unread records.
type Read<'py> = (Bound<'py, PyByteArray>, Vec<Bound<'py, PyList>>, Vec<usize>);

/// feature_columns(records, names, numeric, max_bytes) -> (bytearray, [list, ...], [int, ...])
///
/// ``records``: the prediction records (bytes) of one model version; ``names``: its features in
/// schema order; ``numeric``: per name, whether it is numeric. Returns the numeric columns as one
/// float64 buffer (column after column, each ``len(records)`` long), a list of values per
/// categorical column, and the positions of the records it could not read (see the module: not of
/// the plainest kind, or a categorical value of more than ``max_bytes`` bytes), whose cells hold NaN
/// and None for the caller to fill.
#[pyfunction]
fn feature_columns<'py>(
    py: Python<'py>,
    records: Vec<Bound<'py, PyBytes>>,
    names: Vec<String>,
    numeric: Vec<bool>,
    max_bytes: usize,
) -> PyResult<Read<'py>> {
    if names.len() != numeric.len() {
        return Err(pyo3::exceptions::PyValueError::new_err(
            "names and numeric differ in length",
        ));
    }
    let n = records.len();
    let n_numeric = numeric.iter().filter(|x| **x).count();
    let n_categorical = names.len() - n_numeric;
    let keys: Vec<Vec<u8>> = names.iter().map(|s| s.as_bytes().to_vec()).collect();
    // the numeric columns one after the other, each `n` long: written in place, copied out once
    let mut flat: Vec<f64> = vec![f64::NAN; n * n_numeric];
    let mut cat_cols: Vec<Vec<Option<&[u8]>>> =
        (0..n_categorical).map(|_| Vec::with_capacity(n)).collect();
    let mut failed = Vec::new();
    let mut row = Row {
        numeric: Vec::with_capacity(n_numeric),
        categorical: Vec::with_capacity(n_categorical),
    };
    for (i, rec) in records.iter().enumerate() {
        if record(rec.as_bytes(), &keys, &numeric, max_bytes, &mut row).is_some() {
            for (j, v) in row.numeric.iter().enumerate() {
                flat[j * n + i] = *v;
            }
            for (col, v) in cat_cols.iter_mut().zip(&row.categorical) {
                col.push(*v);
            }
        } else {
            failed.push(i); // its numeric cells stay NaN
            for col in cat_cols.iter_mut() {
                col.push(None);
            }
        }
    }
    // SAFETY: a slice of f64 viewed as its bytes, for the copy into the bytearray
    let bytes = unsafe { std::slice::from_raw_parts(flat.as_ptr() as *const u8, flat.len() * 8) };
    let numeric_out = PyByteArray::new(py, bytes);
    let mut categorical_out = Vec::with_capacity(n_categorical);
    for col in cat_cols {
        // one string object per distinct value of the column (up to 64 of them): categories repeat
        let mut seen: Vec<(&[u8], Bound<'py, PyString>)> = Vec::new();
        let list = PyList::empty(py);
        for v in col {
            match v {
                None => list.append(py.None())?,
                Some(s) => {
                    let hit = seen.iter().find(|(k, _)| *k == s).map(|(_, o)| o.clone());
                    let obj = match hit {
                        Some(o) => o,
                        None => {
                            // checked UTF-8 while reading the record
                            let o = PyString::new(py, std::str::from_utf8(s).unwrap_or_default());
                            if seen.len() < 64 {
                                seen.push((s, o.clone()));
                            }
                            o
                        }
                    };
                    list.append(obj)?;
                }
            }
        }
        categorical_out.push(list);
    }
    Ok((numeric_out, categorical_out, failed))
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_function(wrap_pyfunction!(feature_columns, m)?)?;
    m.add_class::<join::Join>()?;
    Ok(())
}
