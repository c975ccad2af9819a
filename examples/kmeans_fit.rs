//! Times segvalue's K-means fit alone, for `bench/harness.py` (`bench/run`):
//!
//!     kmeans_fit POINTS_PARQUET K N_INIT SEED FEATURE... [--init CENTRES_JSON]
//!
//! Reads the features, standardises them (population std, as scikit-learn's `StandardScaler`),
//! fits Lloyd's K-means and prints `{"fit_seconds", "inertia", "n_iter"}` as JSON. With
//! `--init`, one run starts from those centres (a JSON array of k rows, in the standardised
//! space), so both sides of the benchmark do the same iterations from the same start.

use std::time::Instant;

use datafusion::arrow::array::AsArray;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use linfa::prelude::*;
use ndarray::{Array2, Axis, ShapeBuilder};
use segvalue::segment::{KMeansInit, KMeansParams};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let init = match args.iter().position(|a| a == "--init") {
        Some(i) => {
            let path = args.get(i + 1).ok_or("--init needs a file")?.clone();
            args.drain(i..i + 2);
            let rows: Vec<Vec<f64>> = serde_json::from_slice(&std::fs::read(path)?)?;
            let p = rows.first().map_or(0, Vec::len);
            Some(KMeansInit::Precomputed(Array2::from_shape_vec((rows.len(), p), rows.concat())?))
        }
        None => None,
    };
    let [path, k, n_init, seed, features @ ..] = args.as_slice() else {
        return Err("usage: kmeans_fit POINTS_PARQUET K N_INIT SEED FEATURE... [--init CENTRES_JSON]".into());
    };
    let reader = ParquetRecordBatchReaderBuilder::try_new(std::fs::File::open(path)?)?.build()?;
    let mut cols: Vec<Vec<f64>> = vec![Vec::new(); features.len()];
    for batch in reader {
        let batch = batch?;
        for (j, name) in features.iter().enumerate() {
            let c = cast(batch.column_by_name(name).ok_or(format!("no column {name}"))?, &DataType::Float64)?;
            cols[j].extend(c.as_primitive::<Float64Type>().values().iter());
        }
    }
    // Column-major, as the columns arrive from Parquet (segvalue's pipeline does the same).
    let n = cols[0].len();
    let p = cols.len();
    let mut x = Array2::from_shape_vec((n, p).f(), cols.concat())?;
    for mut c in x.axis_iter_mut(Axis(1)) {
        let mean = c.sum() / n as f64;
        let std = (c.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        c.mapv_inplace(|v| (v - mean) / std);
    }

    let t = Instant::now();
    let mut params = KMeansParams::new(k.parse()?, seed.parse()?).n_init(n_init.parse()?);
    if let Some(init) = init {
        params = params.init_method(init);
    }
    let model = params.fit(&DatasetBase::from(x))?;
    let seconds = t.elapsed().as_secs_f64();
    println!(r#"{{"fit_seconds": {seconds}, "inertia": {}, "n_iter": {}}}"#, model.inertia, model.n_iter);
    Ok(())
}
