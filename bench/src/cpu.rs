//! Where the CPU went during a run: each process's user+system time from `/proc`, by
//! command name, over a window. Linux only; elsewhere the snapshots are empty.

use std::{collections::HashMap, fs, time::Instant};

/// The processes named in the breakdown; everything else is "other".
const NAMES: &[&str] = &["gantry", "gantry-bench", "nats-server", "postgres"];

pub struct Snapshot {
    at: Instant,
    /// CPU ticks of each process (pid → (name, ticks)).
    processes: HashMap<u32, (String, u64)>,
    /// Busy and total ticks of the whole machine.
    busy: u64,
    total: u64,
}

pub fn snapshot() -> Snapshot {
    let (busy, total) = machine_ticks().unwrap_or((0, 0));
    let mut processes = HashMap::new();
    if let Ok(entries) = fs::read_dir("/proc") {
        for entry in entries.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|s| s.parse::<u32>().ok())
            else {
                continue;
            };
            if let Some(process) = process_ticks(pid) {
                processes.insert(pid, process);
            }
        }
    }
    Snapshot {
        at: Instant::now(),
        processes,
        busy,
        total,
    }
}

/// `(name, ticks)` of one process from `/proc/<pid>/stat` (utime + stime).
fn process_ticks(pid: u32) -> Option<(String, u64)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_string();
    // After the name: state is field 3, utime field 14, stime field 15.
    let fields: Vec<&str> = stat.get(close + 2..)?.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, utime + stime))
}

/// Busy and total ticks of all CPUs from the first line of `/proc/stat`.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let values: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let total: u64 = values.iter().take(8).sum();
    let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

/// One line: how many cores each kind of process used on average between two snapshots.
pub fn breakdown(before: &Snapshot, after: &Snapshot) -> String {
    let secs = after.at.duration_since(before.at).as_secs_f64();
    if secs <= 0.0 || after.total == 0 {
        return "CPU breakdown unavailable".into();
    }
    let per_second = ticks_per_second();
    let cores = |ticks: u64| ticks as f64 / per_second / secs;
    let mut by_name: Vec<(&str, u64)> = NAMES.iter().map(|n| (*n, 0)).collect();
    let mut named = 0;
    for (pid, (name, ticks)) in &after.processes {
        let Some(slot) = by_name.iter_mut().find(|(n, _)| n == name) else {
            continue;
        };
        let earlier = before
            .processes
            .get(pid)
            .filter(|(n, _)| n == name)
            .map_or(0, |(_, t)| *t);
        let used = ticks.saturating_sub(earlier);
        slot.1 += used;
        named += used;
    }
    let busy = after.busy.saturating_sub(before.busy);
    let total = after.total.saturating_sub(before.total);
    // /proc/stat counts all CPUs: its total over the window is cores × ticks.
    let machine_cores = if total > 0 {
        total as f64 / per_second / secs
    } else {
        0.0
    };
    let mut parts: Vec<String> = by_name
        .iter()
        .map(|(name, ticks)| format!("{name} {:.2}", cores(*ticks)))
        .collect();
    parts.push(format!("other {:.2}", cores(busy.saturating_sub(named))));
    parts.push(format!(
        "idle {:.2}",
        cores(total.saturating_sub(busy)).min(machine_cores)
    ));
    parts.join(", ")
}
