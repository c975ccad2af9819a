//! Feature preparation, fitted on the run's rows: per numeric column impute → log1p → clip at
//! quantiles → scale; categorical columns become one-hot 0/1 columns (not scaled, as in a
//! scikit-learn `ColumnTransformer` with `OneHotEncoder`).
//!
//! Every fitted number (fill values, clip bounds, centres, scales, categories) is returned in
//! [`PrepColumn`]s, which the run publishes, so a segmentation can be explained and
//! reproduced. Quantiles use linear interpolation (numpy's default), like scikit-learn.

use ndarray::{Array2, ArrayView1, Axis, ShapeBuilder};

use super::error::SegmentError;
use crate::stats::quantile_of;
use super::spec::{ColumnPrep, Impute, Scale};

/// Category for SQL NULL in a one-hot column.
pub const NULL_CATEGORY: &str = "(null)";

/// One column of the prepared matrix and how it was made.
#[derive(Debug, Clone, PartialEq)]
pub struct PrepColumn {
    /// `feature` for numeric columns, `column=category` for one-hot columns.
    pub column: String,
    pub source: String,
    pub category: Option<String>,
    /// `none`, `mean`, `median` or `constant`.
    pub impute: &'static str,
    pub fill_value: Option<f64>,
    pub nulls_filled: usize,
    pub log1p: bool,
    pub clip_lower: Option<f64>,
    pub clip_upper: Option<f64>,
    /// z = (x − center) / scale.
    pub center: f64,
    pub scale: f64,
}

impl PrepColumn {
    /// The 0/1 column of `category` of categorical column `source` (not scaled).
    pub fn one_hot(source: &str, category: &str) -> PrepColumn {
        PrepColumn {
            column: format!("{source}={category}"),
            source: source.to_string(),
            category: Some(category.to_string()),
            impute: "none",
            fill_value: None,
            nulls_filled: 0,
            log1p: false,
            clip_lower: None,
            clip_upper: None,
            center: 0.0,
            scale: 1.0,
        }
    }
}

/// A fitted scale as used: a zero or non-finite one becomes 1, so a constant column maps to a
/// constant, not NaN (scikit-learn does the same).
pub fn usable_scale(scale: f64) -> f64 {
    if scale > 0.0 && scale.is_finite() { scale } else { 1.0 }
}

#[derive(Debug, Clone)]
pub struct Prepared {
    /// Rows × prepared columns, the clustering input.
    pub z: Array2<f64>,
    pub columns: Vec<PrepColumn>,
}

/// Numeric input: `x` holds NaN where the source is NULL.
pub struct Input<'a> {
    pub view: &'a str,
    pub names: &'a [String],
    pub x: &'a Array2<f64>,
    pub prep: &'a [ColumnPrep],
    pub scale: Scale,
    pub categorical_names: &'a [String],
    pub categorical: &'a [Vec<Option<String>>],
}

pub fn prepare(input: &Input) -> Result<Prepared, SegmentError> {
    let n = input.x.nrows();
    let mut out: Vec<Vec<f64>> = Vec::new();
    let mut columns = Vec::new();
    for (j, name) in input.names.iter().enumerate() {
        let (values, col) = prepare_numeric(input.view, name, input.x.column(j), &input.prep[j], input.scale)?;
        out.push(values);
        columns.push(col);
    }
    for (name, values) in input.categorical_names.iter().zip(input.categorical) {
        let mut cats: Vec<&str> = values.iter().map(|v| v.as_deref().unwrap_or(NULL_CATEGORY)).collect();
        cats.sort_unstable();
        cats.dedup();
        for cat in cats {
            out.push(values.iter().map(|v| f64::from(u8::from(v.as_deref().unwrap_or(NULL_CATEGORY) == cat))).collect());
            columns.push(PrepColumn::one_hot(name, cat));
        }
    }
    // Column-major, as the columns were built: K-means reads it without a copy.
    let p = out.len();
    let z = Array2::from_shape_vec((n, p).f(), out.concat()).expect("n values per column");
    Ok(Prepared { z, columns })
}

fn prepare_numeric(
    view: &str,
    name: &str,
    x: ArrayView1<f64>,
    prep: &ColumnPrep,
    scale: Scale,
) -> Result<(Vec<f64>, PrepColumn), SegmentError> {
    let nulls = x.iter().filter(|v| v.is_nan()).count();
    let present = || x.iter().copied().filter(|v| !v.is_nan()).collect::<Vec<f64>>();
    let (impute, fill) = match prep.impute {
        Impute::None if nulls > 0 => {
            return Err(SegmentError::Nulls {
                view: view.to_string(),
                column: name.to_string(),
                count: nulls,
            });
        }
        Impute::None => ("none", None),
        Impute::Mean => {
            let v = present();
            ("mean", Some(v.iter().sum::<f64>() / v.len() as f64))
        }
        Impute::Median => ("median", Some(quantile_of(&mut present(), 0.5))),
        Impute::Constant(c) => ("constant", Some(c)),
    };
    let mut v: Vec<f64> = x.iter().map(|&a| if a.is_nan() { fill.unwrap_or(f64::NAN) } else { a }).collect();
    if prep.log1p {
        v.iter_mut().for_each(|a| *a = a.ln_1p());
    }
    if let Some(bad) = v.iter().position(|a| !a.is_finite()) {
        let why = if fill.is_some_and(|f| !f.is_finite()) {
            "the column has no values to impute from".to_string()
        } else {
            format!("row {} becomes {} (log1p of a value below -1?)", bad + 1, v[bad])
        };
        return Err(SegmentError::NonFinite {
            view: view.to_string(),
            column: name.to_string(),
            count: v.iter().filter(|a| !a.is_finite()).count(),
            why,
        });
    }
    let (mut lo, mut hi) = (None, None);
    if let Some((ql, qh)) = prep.clip {
        let mut scratch = v.clone();
        let (l, h) = (quantile_of(&mut scratch, ql), quantile_of(&mut scratch, qh));
        v.iter_mut().for_each(|a| *a = a.clamp(l, h));
        (lo, hi) = (Some(l), Some(h));
    }
    let (center, s) = fit_scale(scale, &v);
    let z = v.iter().map(|a| (a - center) / s).collect();
    Ok((
        z,
        PrepColumn {
            column: name.to_string(),
            source: name.to_string(),
            category: None,
            impute,
            fill_value: fill,
            nulls_filled: if fill.is_some() { nulls } else { 0 },
            log1p: prep.log1p,
            clip_lower: lo,
            clip_upper: hi,
            center,
            scale: s,
        },
    ))
}

/// (center, scale) of one column. z-score uses the population std (ddof 0) as scikit-learn's
/// `StandardScaler`; robust uses median and IQR as `RobustScaler`; see [`usable_scale`].
fn fit_scale(kind: Scale, v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let (center, scale) = match kind {
        Scale::None => (0.0, 1.0),
        Scale::ZScore => {
            let mean = v.iter().sum::<f64>() / n;
            (mean, (v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / n).sqrt())
        }
        Scale::MinMax => {
            let (min, max) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
            (min, max - min)
        }
        Scale::Robust => {
            let mut s = v.to_vec();
            let (q1, med, q3) = (quantile_of(&mut s, 0.25), quantile_of(&mut s, 0.5), quantile_of(&mut s, 0.75));
            (med, q3 - q1)
        }
    };
    (center, usable_scale(scale))
}


/// Prepares new rows with already fitted columns (a saved model): the same steps as
/// [`prepare`] in the same order, so the training rows give the same bits. A NULL in a
/// column fitted without imputation is an error; an unseen category is all zeros.
pub fn apply(
    view: &str,
    names: &[String],
    x: &Array2<f64>,
    categorical_names: &[String],
    categorical: &[Vec<Option<String>>],
    columns: &[PrepColumn],
) -> Result<Array2<f64>, SegmentError> {
    let n = x.nrows();
    let mut out: Vec<f64> = Vec::with_capacity(n * columns.len());
    for c in columns {
        match &c.category {
            Some(cat) => {
                let j = categorical_names.iter().position(|s| s == &c.source).ok_or_else(|| missing(view, &c.source))?;
                out.extend(categorical[j].iter().map(|v| f64::from(u8::from(v.as_deref().unwrap_or(NULL_CATEGORY) == cat))));
            }
            None => {
                let j = names.iter().position(|s| s == &c.source).ok_or_else(|| missing(view, &c.source))?;
                let col = x.column(j);
                let nulls = col.iter().filter(|v| v.is_nan()).count();
                if nulls > 0 && c.fill_value.is_none() {
                    return Err(SegmentError::Nulls {
                        view: view.to_string(),
                        column: c.source.clone(),
                        count: nulls,
                    });
                }
                for &a in col {
                    let mut v = if a.is_nan() { c.fill_value.unwrap_or(f64::NAN) } else { a };
                    if c.log1p {
                        v = v.ln_1p();
                    }
                    if let (Some(l), Some(h)) = (c.clip_lower, c.clip_upper) {
                        v = v.clamp(l, h);
                    }
                    out.push((v - c.center) / c.scale);
                }
            }
        }
    }
    if let Some(bad) = out.iter().position(|v| !v.is_finite()) {
        let c = &columns[bad / n.max(1)];
        return Err(SegmentError::NonFinite {
            view: view.to_string(),
            column: c.source.clone(),
            count: 1,
            why: format!("row {} becomes {} with the saved preparation", bad % n.max(1) + 1, out[bad]),
        });
    }
    Ok(Array2::from_shape_vec((n, columns.len()).f(), out).expect("n values per column"))
}

fn missing(view: &str, column: &str) -> SegmentError {
    SegmentError::Params(format!("view '{view}' has no column '{column}' that the saved model was fitted on"))
}

/// Back to prepared (pre-scaling) units: z · scale + center, per column.
pub fn unscale(z: &Array2<f64>, columns: &[PrepColumn]) -> Array2<f64> {
    let mut out = z.clone();
    for (mut c, col) in out.axis_iter_mut(Axis(1)).zip(columns) {
        c.mapv_inplace(|v| v * col.scale + col.center);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn prep(impute: Impute, log1p: bool, clip: Option<(f64, f64)>) -> ColumnPrep {
        ColumnPrep {
            impute,
            log1p,
            clip,
            low: "low".into(),
            high: "high".into(),
        }
    }

    fn run(x: &Array2<f64>, p: ColumnPrep, scale: Scale) -> Result<Prepared, SegmentError> {
        let names = vec!["a".to_string()];
        prepare(&Input {
            view: "v",
            names: &names,
            x,
            prep: &[p],
            scale,
            categorical_names: &[],
            categorical: &[],
        })
    }

    #[test]
    fn median_imputation_fills_and_counts_nulls() {
        let x = array![[1.0], [f64::NAN], [3.0], [10.0]];
        let p = run(&x, prep(Impute::Median, false, None), Scale::None).unwrap();
        assert_eq!(p.z.column(0).to_vec(), vec![1.0, 3.0, 3.0, 10.0]);
        assert_eq!((p.columns[0].nulls_filled, p.columns[0].fill_value), (1, Some(3.0)));
    }

    #[test]
    fn nulls_without_imputation_name_the_column() {
        let x = array![[1.0], [f64::NAN]];
        let err = run(&x, prep(Impute::None, false, None), Scale::None).unwrap_err();
        assert_eq!(
            err.to_string(),
            "view 'v': feature 'a' has 1 null value(s); set an imputation \
             ([segmentation] impute = \"mean\", \"median\" or a number)"
        );
    }

    #[test]
    fn log1p_below_minus_one_is_an_error_naming_the_column() {
        let x = array![[0.0], [-2.0]];
        let err = run(&x, prep(Impute::None, true, None), Scale::None).unwrap_err().to_string();
        assert!(err.starts_with("view 'v': feature 'a' has 1 non-finite value(s) after preparation: row 2 becomes NaN"), "{err}");
    }

    #[test]
    fn clip_winsorises_at_linear_quantiles() {
        // 0..=10: the 10 % quantile is 1, the 90 % quantile is 9.
        let x = Array2::from_shape_fn((11, 1), |(i, _)| i as f64);
        let p = run(&x, prep(Impute::None, false, Some((0.1, 0.9))), Scale::None).unwrap();
        assert_eq!(p.z[[0, 0]], 1.0);
        assert_eq!(p.z[[10, 0]], 9.0);
        assert_eq!(p.z[[5, 0]], 5.0);
        assert_eq!((p.columns[0].clip_lower, p.columns[0].clip_upper), (Some(1.0), Some(9.0)));
    }


    #[test]
    fn robust_scale_uses_median_and_iqr() {
        // 1..=5: median 3, q25 2, q75 4 → IQR 2.
        let x = array![[1.0], [2.0], [3.0], [4.0], [5.0]];
        let p = run(&x, prep(Impute::None, false, None), Scale::Robust).unwrap();
        assert_eq!(p.z.column(0).to_vec(), vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
    }

    #[test]
    fn zscore_uses_the_population_std_and_constants_map_to_zero() {
        let x = array![[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]];
        let names = vec!["a".to_string(), "b".to_string()];
        let p = prepare(&Input {
            view: "v",
            names: &names,
            x: &x,
            prep: &[prep(Impute::None, false, None), prep(Impute::None, false, None)],
            scale: Scale::ZScore,
            categorical_names: &[],
            categorical: &[],
        })
        .unwrap();
        let sd = (8.0f64 / 3.0).sqrt();
        assert!((p.z[[0, 0]] + 2.0 / sd).abs() < 1e-12);
        assert_eq!(p.z.column(1).to_vec(), vec![0.0, 0.0, 0.0]);
        assert!((unscale(&p.z, &p.columns) - &x).iter().all(|d| d.abs() < 1e-12));
    }

    #[test]
    fn one_hot_has_a_sorted_column_per_category_including_null() {
        let x = Array2::zeros((3, 0));
        let cats = vec![vec![Some("web".to_string()), None, Some("app".to_string())]];
        let p = prepare(&Input {
            view: "v",
            names: &[],
            x: &x,
            prep: &[],
            scale: Scale::ZScore,
            categorical_names: &["channel".to_string()],
            categorical: &cats,
        })
        .unwrap();
        let names: Vec<&str> = p.columns.iter().map(|c| c.column.as_str()).collect();
        assert_eq!(names, vec!["channel=(null)", "channel=app", "channel=web"]);
        assert_eq!(p.z.row(0).to_vec(), vec![0.0, 0.0, 1.0]);
        assert_eq!(p.z.row(1).to_vec(), vec![1.0, 0.0, 0.0]);
    }
}
