//! SVG line charts for the sweep, drawn with plotters' SVG backend (no font files
//! needed: the SVG carries text, the viewer renders it).
//!
//! Contract: [`line_chart`] draws one line per series over a log2 x axis (the
//! partition counts, labelled at powers of two), with an optional dashed horizontal target line, and writes
//! `path`. Points with a missing value are left out of their series.

use std::path::Path;

use plotters::prelude::*;

/// One line: a label and its (x, y) points.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    pub points: Vec<(f64, f64)>,
}

/// A horizontal reference line.
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub y: f64,
    pub label: String,
}

/// Where a partition count goes on the x axis: log2, so 1, 2, 4, 8, 16 are evenly
/// spaced.
pub fn x_position(partitions: f64) -> f64 {
    partitions.max(1e-3).log2()
}

/// The tick label at axis position `x`: the partition count at powers of two, else
/// nothing.
pub fn x_tick_label(x: f64) -> String {
    if (x - x.round()).abs() < 1e-6 && x >= 0.0 {
        format!("{}", 2f64.powi(x.round() as i32))
    } else {
        String::new()
    }
}

/// The x range on the log2 axis, padded so edge points are not clipped.
pub fn x_range(series: &[Series]) -> (f64, f64) {
    let xs = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| x_position(p.0)));
    let (min, max) = xs.fold((f64::MAX, f64::MIN), |(lo, hi), x| (lo.min(x), hi.max(x)));
    if min > max {
        return (-0.5, 0.5);
    }
    (min.floor() - 0.3, max.ceil() + 0.3)
}

/// The y range: from 0 to 15% above the highest point or reference.
pub fn y_max(series: &[Series], reference: Option<&Reference>) -> f64 {
    let top = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(reference.map(|r| r.y))
        .fold(0.0f64, f64::max);
    if top <= 0.0 {
        1.0
    } else {
        top * 1.15
    }
}

pub fn line_chart(
    path: &Path,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    reference: Option<&Reference>,
) -> Result<(), String> {
    let fail = |e: &dyn std::fmt::Display| format!("plotting {}: {e}", path.display());
    let (x_min, x_max) = x_range(series);
    let y_top = y_max(series, reference);
    let root = SVGBackend::new(path, (860, 520)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| fail(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(x_min..x_max, 0f64..y_top)
        .map_err(|e| fail(&e))?;
    chart
        .configure_mesh()
        .x_desc(x_label)
        .y_desc(y_label)
        .x_labels((x_max - x_min).round() as usize + 1)
        .x_label_formatter(&|x| x_tick_label(*x))
        .y_label_formatter(&|y| crate::report::thousands(*y))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(|e| fail(&e))?;
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points: Vec<(f64, f64)> = s.points.iter().map(|&(x, y)| (x_position(x), y)).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(|e| fail(&e))?
            .label(s.label.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
        chart
            .draw_series(
                points
                    .iter()
                    .map(|&(x, y)| Circle::new((x, y), 4, color.filled())),
            )
            .map_err(|e| fail(&e))?;
    }
    if let Some(reference) = reference {
        let style = RED.mix(0.7).stroke_width(1);
        chart
            .draw_series(DashedLineSeries::new(
                vec![(x_min, reference.y), (x_max, reference.y)],
                6,
                4,
                style,
            ))
            .map_err(|e| fail(&e))?
            .label(reference.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], style));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.85))
        .draw()
        .map_err(|e| fail(&e))?;
    root.present().map_err(|e| fail(&e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> Vec<Series> {
        vec![
            Series {
                label: "batch 250".into(),
                points: vec![(1.0, 10_000.0), (4.0, 30_000.0), (16.0, 45_000.0)],
            },
            Series {
                label: "batch 1000".into(),
                points: vec![(1.0, 20_000.0), (4.0, 60_000.0)],
            },
        ]
    }

    #[test]
    fn ranges_cover_every_point() {
        let (lo, hi) = x_range(&series());
        assert!(lo < x_position(1.0) && hi > x_position(16.0));
        assert_eq!(x_tick_label(x_position(8.0)), "8");
        assert_eq!(x_tick_label(1.5), "");
        let reference = Reference {
            y: 80_000.0,
            label: "target".into(),
        };
        assert!(y_max(&series(), Some(&reference)) >= 80_000.0);
        assert!(y_max(&series(), None) >= 60_000.0);
        assert_eq!(y_max(&[], None), 1.0);
    }

    #[test]
    fn writes_an_svg() {
        let dir = std::env::temp_dir().join(format!("outbox-load-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.svg");
        let reference = Reference {
            y: 50_000.0,
            label: "target 50,000/s".into(),
        };
        line_chart(
            &path,
            "drain",
            "partitions",
            "events/s",
            &series(),
            Some(&reference),
        )
        .unwrap();
        let svg = std::fs::read_to_string(&path).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("batch 1000"));
        if std::env::var_os("KEEP_PLOT").is_none() {
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
}
