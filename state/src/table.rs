//! The one table renderer of berth's CLI: `berth ps`, `berth state ls`, `history`, `show`.
//!
//! Columns are laid out by `tabwriter`, the Rust port of Go's `text/tabwriter`, which is
//! what `docker ps`, `crictl ps` and `nomad status` use: the output reads the way an
//! operator already reads theirs, and a column is as wide as its widest cell, whatever the
//! length of a task id.

use std::io::Write as _;

/// Spaces between two columns.
const GAP: usize = 2;

/// A table: the header, then each row, each column as wide as its widest cell (counted in
/// characters as a terminal shows them), two spaces apart; the last column is not padded
/// and no line ends in spaces. A cell's tabs, line breaks and other control characters
/// become spaces, so that a message Docker wrote over several lines keeps its row. Pure.
pub fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut text = String::new();
    let mut line = |cells: &mut dyn Iterator<Item = &str>| {
        let cells: Vec<String> = cells.map(clean).collect();
        text.push_str(&cells.join("\t"));
        text.push('\n');
    };
    line(&mut header.iter().copied());
    for row in rows {
        line(&mut row.iter().map(String::as_str));
    }
    let mut writer = tabwriter::TabWriter::new(Vec::new())
        .minwidth(0)
        .padding(GAP);
    // Writing to a Vec cannot fail; the cells have no tabs of their own left.
    let laid_out = writer
        .write_all(text.as_bytes())
        .and_then(|()| writer.flush())
        .ok()
        .and_then(|()| writer.into_inner().ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or(text);
    let mut out = String::with_capacity(laid_out.len());
    for line in laid_out.lines() {
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn clean(cell: &str) -> String {
    cell.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(rows: &[&[&str]]) -> Vec<Vec<String>> {
        rows.iter()
            .map(|r| r.iter().map(|c| (*c).to_owned()).collect())
            .collect()
    }

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let long = "a-task-id-much-longer-than-twenty-characters";
        type Case = (&'static [&'static str], Vec<Vec<String>>, String);
        let cases: [Case; 5] = [
            (
                &["A", "LONGER"],
                rows(&[&["xyz", "1"], &["q", ""]]),
                "A    LONGER\nxyz  1\nq\n".to_owned(),
            ),
            // A long cell widens its column for every row; the next column stays aligned.
            (
                &["TASK", "STATE"],
                rows(&[&["web", "RUNNING"], &[long, "FINISHED"]]),
                format!(
                    "TASK{}STATE\nweb{}RUNNING\n{long}  FINISHED\n",
                    " ".repeat(long.len() - 2),
                    " ".repeat(long.len() - 1)
                ),
            ),
            // Tabs and line breaks in a cell do not break the layout.
            (
                &["ID", "MESSAGE", "X"],
                rows(&[&["1", "two\nlines\tand a tab", "x"]]),
                "ID  MESSAGE              X\n1   two lines and a tab  x\n".to_owned(),
            ),
            // Only the header.
            (
                &["CONTAINER", "TASK"],
                Vec::new(),
                "CONTAINER  TASK\n".to_owned(),
            ),
            // Width is counted in characters, not bytes.
            (
                &["N", "X"],
                rows(&[&["héé", "1"], &["abcd", "2"]]),
                "N     X\nhéé   1\nabcd  2\n".to_owned(),
            ),
        ];
        for (header, rows, want) in cases {
            assert_eq!(render(header, &rows), want, "{header:?}");
        }
    }
}
