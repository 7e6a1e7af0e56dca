//! The `gateway` binary's log on a pipe: `LOG_FORMAT=json` is one JSON object per line, text
//! has no ANSI escape sequences when standard output is not a terminal, and an unknown format
//! stops startup naming the variable.

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use serde_json::Value;

/// Runs the binary with `vars` on memory storage and the in-process mock upstream until it
/// has logged that it listens (then kills it), or until it exits; returns its exit status (if
/// it exited by itself), standard output and standard error.
fn run_gateway(vars: &[(&str, &str)]) -> (Option<ExitStatus>, String, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_gateway"));
    for name in ["LOG_FORMAT", "NO_COLOR", "RUST_LOG", "UPSTREAM_URL"] {
        command.env_remove(name);
    }
    for (name, _) in std::env::vars().filter(|(n, _)| n.starts_with("OTEL_")) {
        command.env_remove(name);
    }
    let mut child = command
        .env("GATEWAY_ADDR", "127.0.0.1:0")
        .env("DATABASE_URL", "memory:")
        .envs(vars.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the gateway binary starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stdout).lines() {
            let line = line.expect("UTF-8 lines");
            all.push_str(&line);
            all.push('\n');
            let _ = tx.send(line);
        }
        all
    });
    let mut exited = None;
    loop {
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(line) if line.contains("gateway on http://") => break,
            Ok(_) => continue,
            // Standard output closed: the process ended by itself.
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                exited = Some(child.wait().expect("wait"));
                break;
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!("the gateway did not log that it listens within 60 s");
            }
        }
    }
    if exited.is_none() {
        // Stopped once it listens: the lines so far are what is checked.
        child.kill().expect("kill");
        child.wait().expect("wait");
    }
    let stdout = reader.join().expect("the reader");
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (exited, stdout, stderr)
}

#[test]
fn json_is_one_object_per_line() {
    let (exited, out, err) = run_gateway(&[("LOG_FORMAT", "json")]);
    assert!(exited.is_none(), "the gateway started: {err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines.len() >= 2, "{out}");
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"));
        assert_eq!(v["level"], "INFO", "{line}");
        assert!(v["timestamp"].is_string(), "{line}");
        assert!(
            v["message"].is_string(),
            "the fields are at the top: {line}"
        );
        assert!(v["target"].is_string(), "{line}");
    }
    assert!(!out.contains('\u{1b}'));
}

#[test]
fn text_on_a_pipe_has_no_colour_codes() {
    let (exited, out, err) = run_gateway(&[]);
    assert!(exited.is_none(), "the gateway started: {err}");
    assert!(out.lines().count() >= 2, "{out}");
    assert!(out.lines().all(|l| l.contains(" INFO ")), "{out}");
    assert!(!out.contains('\u{1b}'), "no ANSI escape sequences: {out:?}");
}

#[test]
fn an_unknown_format_stops_startup_naming_the_variable() {
    let (exited, out, err) = run_gateway(&[("LOG_FORMAT", "xml")]);
    assert_eq!(exited.and_then(|s| s.code()), Some(2), "{out}{err}");
    assert!(err.contains("LOG_FORMAT") && err.contains("xml"), "{err}");
}
