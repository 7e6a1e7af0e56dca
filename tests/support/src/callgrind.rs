//! Instruction counts of a process run under `valgrind --tool=callgrind`: what the benches that
//! guard them measure (`benches/instructions.rs`, and `benches/storage.rs` with
//! `--sqlite-instructions`). Counts, unlike times, repeat whatever else the machine is doing.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

/// Runs `exe` with `args` under callgrind, its profile written to `out`, and returns the
/// instructions the process executed, all threads together.
pub fn instructions<I, S>(exe: &Path, args: I, out: &Path) -> Result<u64, String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let status = Command::new("valgrind")
        .args(["--tool=callgrind", "--quiet"])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(exe)
        .args(args)
        .status()
        .map_err(|e| format!("valgrind: {e}"))?;
    if !status.success() {
        return Err(format!("the child under valgrind failed: {status}"));
    }
    let text = std::fs::read_to_string(out).map_err(|e| format!("{}: {e}", out.display()))?;
    total(&text).ok_or_else(|| format!("no instruction total in {}", out.display()))
}

/// The total of a callgrind profile: the first number of its `summary:` line (or `totals:`,
/// which older versions write instead).
pub fn total(profile: &str) -> Option<u64> {
    profile.lines().find_map(|l| {
        l.strip_prefix("summary:")
            .or_else(|| l.strip_prefix("totals:"))?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    })
}

#[cfg(test)]
mod tests {
    use super::total;

    #[test]
    fn the_total_is_the_first_number_of_the_summary_or_totals_line() {
        assert_eq!(
            total("events: Ir\nfn=main\n12 34\nsummary: 84939244\n"),
            Some(84_939_244)
        );
        assert_eq!(total("events: Ir Dr\ntotals: 1200 7\n"), Some(1200));
        assert_eq!(total("events: Ir\nfn=summary:\n"), None);
        assert_eq!(total("summary: many\n"), None);
        assert_eq!(total(""), None);
    }
}
