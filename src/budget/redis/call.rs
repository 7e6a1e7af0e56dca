//! [`Call`]: one script call's keys and arguments, sent alone (`EVALSHA`, loading the script
//! when the server does not have it yet) or as one command of a pipeline.

use redis::{Cmd, Script, ScriptInvocation};

/// One call of a script.
pub(super) struct Call<'a> {
    script: &'a Script,
    keys: Vec<String>,
    args: Vec<String>,
}

impl<'a> Call<'a> {
    /// A call of `script` with no keys or arguments yet.
    pub(super) fn new(script: &'a Script) -> Self {
        Call {
            script,
            keys: Vec::new(),
            args: Vec::new(),
        }
    }

    /// Adds a key.
    pub(super) fn key(&mut self, key: String) -> &mut Self {
        self.keys.push(key);
        self
    }

    /// Adds an argument.
    pub(super) fn arg(&mut self, arg: impl ToString) -> &mut Self {
        self.args.push(arg.to_string());
        self
    }

    /// The call on its own (loads the script when the server lacks it).
    pub(super) fn invocation(&self) -> ScriptInvocation<'a> {
        let mut invocation = self.script.prepare_invoke();
        for key in &self.keys {
            invocation.key(key);
        }
        for arg in &self.args {
            invocation.arg(arg);
        }
        invocation
    }

    /// The call as an `EVALSHA` command, for a pipeline (the script must be loaded: a
    /// `NOSCRIPT` answer means it did not run).
    pub(super) fn command(&self) -> Cmd {
        let mut cmd = redis::cmd("EVALSHA");
        cmd.arg(self.script.get_hash())
            .arg(self.keys.len())
            .arg(&self.keys)
            .arg(&self.args);
        cmd
    }
}
