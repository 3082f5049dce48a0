//! The markdown report: one section per measurement, each a short account
//! of the method, a table of figures against their targets, and notes
//! (misses explained, bottlenecks that are not courier's).
//!
//! Kept apart from the measurements so each of them only produces numbers
//! and words, and the layout is decided in one place.

use std::time::Duration;

/// A markdown table.
#[derive(Debug, Clone)]
pub struct Table {
    /// A line in bold above the table, when a section has several.
    caption: Option<String>,
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&str]) -> Table {
        Table {
            caption: None,
            header: header.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    pub fn with_caption(mut self, caption: impl Into<String>) -> Table {
        self.caption = Some(caption.into());
        self
    }

    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.rows.push(cells.into_iter().map(Into::into).collect());
    }

    pub fn markdown(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut out = match &self.caption {
            Some(caption) => format!("**{caption}**\n\n"),
            None => String::new(),
        };
        out.push_str(&line(&self.header));
        out.push_str(&line(&vec!["---".to_owned(); self.header.len()]));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

/// One measurement's part of the report.
#[derive(Debug, Clone)]
pub struct Section {
    pub title: String,
    /// How it was measured, in a sentence or three.
    pub method: String,
    pub tables: Vec<Table>,
    pub notes: Vec<String>,
    pub took: Duration,
}

impl Section {
    pub fn new(title: impl Into<String>, method: impl Into<String>) -> Section {
        Section {
            title: title.into(),
            method: method.into(),
            tables: Vec::new(),
            notes: Vec::new(),
            took: Duration::ZERO,
        }
    }

    /// A measurement that could not finish: the error takes the table's place.
    pub fn failed(title: impl Into<String>, error: &anyhow::Error, took: Duration) -> Section {
        Section {
            title: title.into(),
            method: String::new(),
            tables: Vec::new(),
            notes: vec![format!("**failed**: {error:#}")],
            took,
        }
    }

    pub fn markdown(&self) -> String {
        let mut out = format!("## {}\n\n", self.title);
        if !self.method.is_empty() {
            out.push_str(&self.method);
            out.push_str("\n\n");
        }
        for table in &self.tables {
            out.push_str(&table.markdown());
            out.push('\n');
        }
        for note in &self.notes {
            out.push_str(&format!("- {note}\n"));
        }
        out.push_str(&format!("\n_Took {}._\n\n", duration(self.took)));
        out
    }
}

/// "met" or a bold "missed", for the verdict column.
pub fn verdict(met: bool) -> &'static str {
    if met { "met" } else { "**missed**" }
}

/// The median (the mean of the middle two for an even count).
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    match sorted.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => sorted[n / 2],
        n => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
    }
}

/// A whole number with thousands separators: 1234567 → "1,234,567".
pub fn thousands(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".to_owned();
    }
    let digits = format!("{:.0}", value.abs());
    let mut out = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    if value < 0.0 && digits != "0" {
        out.insert(0, '-');
    }
    out
}

/// Each run's value, formatted, separated by " / ".
pub fn runs(values: &[f64], format: impl Fn(f64) -> String) -> String {
    values
        .iter()
        .map(|v| format(*v))
        .collect::<Vec<_>>()
        .join(" / ")
}

pub fn percent(fraction: f64) -> String {
    format!("{:.1}%", fraction * 100.0)
}

/// "1.23 s", "2m05s".
pub fn duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    if secs < 60.0 {
        format!("{secs:.2} s")
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
        assert!(median(&[]).is_nan());
    }

    #[test]
    fn thousands_are_separated() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1000.0), "1,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-1234.0), "-1,234");
    }

    #[test]
    fn tables_render_as_markdown() {
        let mut table = Table::new(&["a", "b"]);
        table.row(["1", "2"]);
        assert_eq!(table.markdown(), "| a | b |\n| --- | --- |\n| 1 | 2 |\n");
    }
}
