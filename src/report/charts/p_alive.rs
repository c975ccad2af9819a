//! Chart 5, P(alive): the BG/NBD probability of being active over a frequency × recency grid,
//! drawn true to scale on uneven grids, with a colour bar beside it.

use plotters::prelude::*;

use super::axes::{axis_fmt, numeric, short};
use super::canvas::{colour_bar, fail, svg};
use super::palette::viridis;
use super::theme::{DESC, H, INK, LABEL, LEGEND_W, MUTED, W, text};
use crate::report::error::ReportError;
use crate::report::model::PAliveMatrix;

pub(in crate::report) fn p_alive(p: &PAliveMatrix) -> Result<String, ReportError> {
    if p.p.len() != p.frequency.len() {
        return Err(fail("p_alive", format!("p has {} rows for {} frequency values", p.p.len(), p.frequency.len())));
    }
    if let Some((i, row)) = p.p.iter().enumerate().find(|(_, r)| r.len() != p.recency.len()) {
        let msg = format!("p[{i}] has {} values for {} recency values", row.len(), p.recency.len());
        return Err(fail("p_alive", msg));
    }
    let fy = cell_edges("frequency", &p.frequency)?;
    let rx = cell_edges("recency", &p.recency)?;
    let unit = p.time_unit.trim();
    let x_desc = if unit.is_empty() { "recency".to_string() } else { format!("recency ({})", short(unit, 20)) };
    let bottom = 48;

    svg("p_alive", (W, H), |root| {
        let (main, side) = root.split_horizontally(W - LEGEND_W);
        let mut chart = ChartBuilder::on(&main)
            .margin(12)
            .margin_top(30)
            .margin_right(8)
            .x_label_area_size(bottom)
            .y_label_area_size(64)
            .build_cartesian_2d(numeric(&(rx[0]..rx[rx.len() - 1]), 9), numeric(&(fy[0]..fy[fy.len() - 1]), 8))?;
        chart
            .configure_mesh()
            .disable_mesh()
            .axis_style(MUTED.stroke_width(1))
            .label_style(text(LABEL, INK))
            .axis_desc_style(text(DESC, INK))
            .x_label_formatter(&axis_fmt(&(rx[0]..rx[rx.len() - 1])))
            .y_label_formatter(&axis_fmt(&(fy[0]..fy[fy.len() - 1])))
            .x_desc(x_desc.as_str())
            .y_desc("frequency (repeat purchases)")
            .draw()?;
        for (i, row) in p.p.iter().enumerate() {
            // NaN marks an impossible cell: left blank.
            chart.draw_series(
                row.iter()
                    .enumerate()
                    .filter(|(_, v)| v.is_finite())
                    .map(|(j, &v)| Rectangle::new([(rx[j], fy[i]), (rx[j + 1], fy[i + 1])], viridis(v).filled())),
            )?;
        }
        colour_bar(&side, 0.0..1.0, viridis, "P(alive)", bottom)
    })
}

/// Cell boundaries halfway between grid values, so uneven grids draw true to scale.
fn cell_edges(name: &str, v: &[f64]) -> Result<Vec<f64>, ReportError> {
    if let Some(i) = v.iter().position(|x| !x.is_finite()) {
        return Err(fail("p_alive", format!("{name}[{i}] = {} is not finite", v[i])));
    }
    if let Some(i) = v.windows(2).position(|w| w[1] <= w[0]) {
        let msg =
            format!("{name}[{}] = {} is not above {name}[{i}] = {}; the grid must increase", i + 1, v[i + 1], v[i]);
        return Err(fail("p_alive", msg));
    }
    Ok(match v {
        [] => vec![0.0, 1.0],
        [x] => vec![x - 0.5, x + 0.5],
        [a, b, ..] => {
            let (y, z) = (v[v.len() - 2], v[v.len() - 1]);
            let mut e = vec![a - (b - a) / 2.0];
            e.extend(v.windows(2).map(|w| (w[0] + w[1]) / 2.0));
            e.push(z + (z - y) / 2.0);
            e
        }
    })
}
