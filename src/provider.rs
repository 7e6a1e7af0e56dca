//! Placeholder: provider rules are being written.

/// Maps a model name to its maker.
#[derive(Debug, Clone, Default)]
pub struct ProviderRules {}

impl ProviderRules {
    /// The maker of `model`.
    pub fn provider(&self, _model: &str) -> &str {
        "Other"
    }
}
