//! The report's picture: recipients resolved per second over the campaign
//! (all of them, and those delivered), above how they ended. plotters draws
//! it as SVG; resvg turns that into a PNG with the font bundled here
//! (DejaVu Sans, `assets/`), so no system fonts are needed.

use std::sync::LazyLock;

use plotters::prelude::*;
use resvg::{tiny_skia, usvg};

use super::Report;
use crate::campaign::duration;

/// The picture's size in pixels: wide enough for a phone's landscape view.
pub const WIDTH: u32 = 1200;
pub const HEIGHT: u32 = 760;

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");

/// SVG text asks for `sans-serif`; this is the font it gets.
static FONTS: LazyLock<usvg::Options<'static>> = LazyLock::new(|| {
    let mut options = usvg::Options::default();
    let fonts = options.fontdb_mut();
    fonts.load_font_data(FONT.to_vec());
    fonts.set_sans_serif_family("DejaVu Sans");
    options
});

#[derive(Debug, thiserror::Error)]
#[error("drawing the report: {0}")]
pub struct ChartError(String);

fn failed<E: std::fmt::Display>(error: E) -> ChartError {
    ChartError(error.to_string())
}

/// The report as a PNG of [`WIDTH`] × [`HEIGHT`].
pub fn png(report: &Report) -> Result<Vec<u8>, ChartError> {
    let svg = svg(report)?;
    let tree = usvg::Tree::from_str(&svg, &FONTS).map_err(failed)?;
    let mut pixmap = tiny_skia::Pixmap::new(WIDTH, HEIGHT)
        .ok_or_else(|| ChartError("no room for the picture".into()))?;
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    pixmap.encode_png().map_err(failed)
}

fn title(report: &Report) -> String {
    let delivered = report.count("delivered");
    let share = match report.recipients {
        0 => 0.0,
        all => delivered as f64 * 100.0 / all as f64,
    };
    let took = report
        .took()
        .map(|took| format!(" · took {}", duration(took)))
        .unwrap_or_default();
    let id = report.campaign.to_string();
    format!(
        "Campaign {}… · {} recipients · {share:.1}% delivered{took}",
        &id[..8],
        report.recipients
    )
}

fn svg(report: &Report) -> Result<String, ChartError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let root = root
            .titled(&title(report), ("sans-serif", 28))
            .map_err(failed)?;
        let (rate, outcomes) = root.split_vertically(HEIGHT / 2);
        draw_rate(&rate, report)?;
        draw_outcomes(&outcomes, report)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// Recipients resolved per second, bucket by bucket.
fn draw_rate(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    report: &Report,
) -> Result<(), ChartError> {
    let seconds = report.bucket.as_secs_f64();
    let per_second = |count: i64| count as f64 / seconds;
    let points = |value: &dyn Fn(&super::Resolved) -> i64| -> Vec<(f64, f64)> {
        report
            .timeline
            .iter()
            .enumerate()
            .map(|(i, bucket)| (i as f64 * seconds, per_second(value(bucket))))
            .collect()
    };
    let all = points(&|b| b.delivered + b.undelivered);
    let delivered = points(&|b| b.delivered);
    let end = (report.timeline.len() as f64 * seconds).max(1.0);
    let top = all.iter().map(|(_, y)| *y).fold(1.0, f64::max) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .margin(20)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..end, 0.0..top)
        .map_err(failed)?;
    chart
        .configure_mesh()
        .light_line_style(WHITE)
        .x_desc("seconds since the start")
        .y_desc("recipients / s")
        .label_style(("sans-serif", 16))
        .draw()
        .map_err(failed)?;
    chart
        .draw_series(AreaSeries::new(all, 0.0, BLUE.mix(0.2)).border_style(BLUE))
        .map_err(failed)?
        .label("resolved")
        .legend(|(x, y)| Rectangle::new([(x, y - 6), (x + 16, y + 6)], BLUE.mix(0.4).filled()));
    chart
        .draw_series(LineSeries::new(delivered, GREEN.stroke_width(2)))
        .map_err(failed)?
        .label("delivered")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], GREEN.stroke_width(2)));
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK.mix(0.3))
        .draw()
        .map_err(failed)
}

/// One bar per outcome (failures by reason), with its count and share.
fn draw_outcomes(
    area: &DrawingArea<SVGBackend, plotters::coord::Shift>,
    report: &Report,
) -> Result<(), ChartError> {
    let bars: Vec<&(String, i64)> = report
        .outcomes
        .iter()
        .filter(|(label, count)| *count > 0 || label == "delivered")
        .collect();
    let labels: Vec<String> = bars
        .iter()
        .map(|(label, count)| {
            let share = match report.recipients {
                0 => 0.0,
                all => *count as f64 * 100.0 / all as f64,
            };
            let label: String = label.chars().take(40).collect();
            format!("{label}  {count} ({share:.1}%)")
        })
        .collect();
    let widest = bars
        .iter()
        .map(|(_, count)| *count)
        .max()
        .unwrap_or(0)
        .max(1);
    let rows = bars.len() as u32;
    let mut chart = ChartBuilder::on(area)
        .margin(20)
        .x_label_area_size(30)
        .y_label_area_size(380)
        .build_cartesian_2d(
            0..widest + widest / 10 + 1,
            (0..rows.saturating_sub(1)).into_segmented(),
        )
        .map_err(failed)?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .light_line_style(WHITE)
        .label_style(("sans-serif", 16))
        .y_label_formatter(&|value| match value {
            SegmentValue::CenterOf(row) => labels
                .get(usize::try_from(*row).unwrap_or(usize::MAX))
                .cloned()
                .unwrap_or_default(),
            _ => String::new(),
        })
        .draw()
        .map_err(failed)?;
    let colour = |label: &str| match label {
        "delivered" => GREEN.mix(0.7),
        "not alive" => BLACK.mix(0.35),
        "cancelled" => RGBColor(240, 170, 0).mix(0.8),
        _ => RED.mix(0.7),
    };
    chart
        .draw_series(bars.iter().zip(0u32..).map(|((label, count), row)| {
            let mut bar = Rectangle::new(
                [
                    (0, SegmentValue::Exact(row)),
                    (*count, SegmentValue::Exact(row + 1)),
                ],
                colour(label).filled(),
            );
            bar.set_margin(6, 6, 0, 0);
            bar
        }))
        .map_err(failed)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use uuid::Uuid;

    use super::*;
    use crate::report::Resolved;

    #[test]
    fn the_picture_is_a_png_of_its_size() {
        let report = Report {
            campaign: Uuid::nil(),
            status: "completed".into(),
            recipients: 1000,
            started_at: None,
            finished_at: None,
            bucket: Duration::from_secs(1),
            timeline: vec![
                Resolved {
                    delivered: 28,
                    undelivered: 2,
                };
                33
            ],
            outcomes: vec![
                ("delivered".into(), 940),
                ("not alive".into(), 50),
                ("failed: Bad Request: chat not found".into(), 10),
                ("cancelled".into(), 0),
            ],
        };
        let png = png(&report).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let size = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
        assert_eq!((size(16), size(20)), (WIDTH, HEIGHT));
        assert!(title(&report).contains("1000 recipients · 94.0% delivered"));
    }

    #[test]
    fn an_empty_campaign_still_draws() {
        let empty = Report {
            campaign: Uuid::nil(),
            status: "completed".into(),
            recipients: 0,
            started_at: None,
            finished_at: None,
            bucket: Duration::from_secs(1),
            timeline: Vec::new(),
            outcomes: vec![("delivered".into(), 0), ("cancelled".into(), 0)],
        };
        assert_eq!(&png(&empty).unwrap()[..8], b"\x89PNG\r\n\x1a\n");
    }
}
