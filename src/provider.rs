//! Model name → the model's maker (`OpenAI`, `Anthropic`, `Google` …).

use std::borrow::Cow;

/// The built-in rules, `(pattern, maker)`; see [`ProviderRules`] for how they match.
const BUILTIN: &[(&str, &str)] = &[
    ("gpt", "OpenAI"),
    ("openai", "OpenAI"),
    ("o1", "OpenAI"),
    ("o3", "OpenAI"),
    ("o4", "OpenAI"),
    ("text-embedding", "OpenAI"),
    ("chatgpt", "OpenAI"),
    ("davinci", "OpenAI"),
    ("babbage", "OpenAI"),
    ("claude", "Anthropic"),
    ("anthropic", "Anthropic"),
    ("gemini", "Google"),
    ("gemma", "Google"),
    ("palm", "Google"),
    ("bard", "Google"),
    ("llama", "Meta"),
    ("meta", "Meta"),
    ("mistral", "Mistral AI"),
    ("mixtral", "Mistral AI"),
    ("magistral", "Mistral AI"),
    ("codestral", "Mistral AI"),
    ("ministral", "Mistral AI"),
    ("pixtral", "Mistral AI"),
    ("devstral", "Mistral AI"),
    ("qwen", "Alibaba"),
    ("deepseek", "DeepSeek"),
    ("grok", "xAI"),
    ("command", "Cohere"),
];

/// A user rule: a lowercase pattern and the maker it names.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Rule {
    pattern: Cow<'static, str>,
    provider: Cow<'static, str>,
}

/// Maps a model name to its maker, for the record's `provider` field.
///
/// A pattern matches where it starts a *word* of the name, ignoring ASCII case: at the start of
/// the name or right after a character that is not an ASCII letter or digit (`/`, `-`, `.`, `:`,
/// `@` …). So `o3` matches `o3-mini` and `openai/o3`, but not `foo3`; `llama` matches
/// `meta-llama/Llama-3.1-8B` and `llama3`, but not `ollama`.
///
/// The **leftmost** match in the name wins (among rules matching at the same place, the earlier
/// rule), so a routing prefix names the maker: `deepseek-ai/DeepSeek-R1-Distill-Llama-70B` is
/// DeepSeek, `openai/gpt-oss-120b` OpenAI. Rules added with [`ProviderRules::with_rule`] are
/// tried before the built-in ones, and the built-in ones only when no user rule matches.
/// Nothing matching: [`ProviderRules::OTHER`].
///
/// Built-in rules: `gpt`, `openai`, `o1`, `o3`, `o4`, `text-embedding`, `chatgpt`, `davinci`,
/// `babbage` → `OpenAI`; `claude`, `anthropic` → `Anthropic`; `gemini`, `gemma`, `palm`, `bard` →
/// `Google`; `llama`, `meta` → `Meta`; `mistral`, `mixtral`, `magistral`, `codestral`,
/// `ministral`, `pixtral`, `devstral` → `Mistral AI`; `qwen` → `Alibaba`; `deepseek` →
/// `DeepSeek`; `grok` → `xAI`; `command` → `Cohere`.
///
/// [`ProviderRules::provider`] does not allocate.
///
/// ```
/// use tower_activity::ProviderRules;
///
/// let rules = ProviderRules::default().with_rule("acme-", "Acme");
/// assert_eq!(rules.provider("claude-sonnet-4-5"), "Anthropic");
/// assert_eq!(rules.provider("o3-mini"), "OpenAI");
/// assert_eq!(rules.provider("acme-llama-70b"), "Acme");
/// assert_eq!(rules.provider("foo3"), "Other");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderRules {
    user: Vec<Rule>,
    builtin: bool,
}

impl Default for ProviderRules {
    /// The built-in rules and no user rules.
    fn default() -> Self {
        Self {
            user: Vec::new(),
            builtin: true,
        }
    }
}

impl ProviderRules {
    /// The maker reported when no rule matches.
    pub const OTHER: &'static str = "Other";

    /// No rules at all: every model is [`ProviderRules::OTHER`] until rules are added.
    ///
    /// ```
    /// use tower_activity::ProviderRules;
    ///
    /// assert_eq!(ProviderRules::empty().provider("gpt-4o"), "Other");
    /// let rules = ProviderRules::empty().with_rule("gpt", "OpenAI");
    /// assert_eq!(rules.provider("gpt-4o"), "OpenAI");
    /// ```
    pub fn empty() -> Self {
        Self {
            user: Vec::new(),
            builtin: false,
        }
    }

    /// Adds a rule that takes precedence over the built-in ones (and is tried after the user
    /// rules added before it). `pattern` is matched at word starts, ignoring ASCII case; an
    /// empty pattern matches every name, making `provider` a catch-all default.
    ///
    /// ```
    /// use tower_activity::ProviderRules;
    ///
    /// let rules = ProviderRules::default().with_rule("llama", "Meta Platforms");
    /// assert_eq!(rules.provider("groq/llama-3.3-70b"), "Meta Platforms");
    /// assert_eq!(rules.provider("gpt-4o"), "OpenAI");
    /// ```
    pub fn with_rule(
        mut self,
        pattern: impl Into<Cow<'static, str>>,
        provider: impl Into<Cow<'static, str>>,
    ) -> Self {
        let pattern = pattern.into();
        // Stored lowercase so that matching compares against one case only.
        let pattern = if pattern.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(pattern.to_ascii_lowercase())
        } else {
            pattern
        };
        self.user.push(Rule {
            pattern,
            provider: provider.into(),
        });
        self
    }

    /// The maker of `model` (see [`ProviderRules`] for the matching).
    ///
    /// ```
    /// use tower_activity::ProviderRules;
    ///
    /// let rules = ProviderRules::default();
    /// assert_eq!(rules.provider("gemini-2.5-flash"), "Google");
    /// assert_eq!(rules.provider("meta-llama/Llama-3.1-8B-Instruct"), "Meta");
    /// assert_eq!(rules.provider("some-new-model"), "Other");
    /// ```
    pub fn provider(&self, model: &str) -> &str {
        match self.rule_for(model) {
            Maker::User(rule) => &rule.provider,
            Maker::Static(name) => name,
        }
    }

    /// [`provider`](Self::provider) for a record's `provider` field: borrowed, with no
    /// allocation, when the rule names the maker with a `&'static str` (every built-in rule).
    pub(crate) fn maker(&self, model: &str) -> Cow<'static, str> {
        match self.rule_for(model) {
            Maker::User(rule) => rule.provider.clone(),
            Maker::Static(name) => Cow::Borrowed(name),
        }
    }

    /// The rule that names the maker of `model`.
    fn rule_for(&self, model: &str) -> Maker<'_> {
        let name = model.as_bytes();
        // Without rules, `leftmost` would still walk every word start of the name.
        if !self.user.is_empty() {
            let user = self.user.iter().map(|r| (r.pattern.as_ref(), r));
            if let Some(rule) = leftmost(name, user) {
                return Maker::User(rule);
            }
        }
        if !self.builtin {
            return Maker::Static(Self::OTHER);
        }
        Maker::Static(leftmost(name, BUILTIN.iter().copied()).unwrap_or(Self::OTHER))
    }
}

/// Where a maker's name comes from: a user rule, or a constant.
enum Maker<'a> {
    User(&'a Rule),
    Static(&'static str),
}

/// What the leftmost rule matching at a word start of `name` says (its maker).
fn leftmost<'a, T: Copy>(
    name: &[u8],
    rules: impl Iterator<Item = (&'a str, T)> + Clone,
) -> Option<T> {
    (0..=name.len())
        .filter(|&i| i == 0 || !name[i - 1].is_ascii_alphanumeric())
        .find_map(|i| {
            let rest = &name[i..];
            rules.clone().find_map(|(pattern, provider)| {
                let p = pattern.as_bytes();
                (rest.len() >= p.len() && rest[..p.len()].eq_ignore_ascii_case(p))
                    .then_some(provider)
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_rule() {
        let rules = ProviderRules::default();
        let cases = [
            ("gpt-4o-2024-08-06", "OpenAI"),
            ("openai/gpt-oss-120b", "OpenAI"),
            ("o1-preview", "OpenAI"),
            ("o3", "OpenAI"),
            ("o3-mini-2025-01-31", "OpenAI"),
            ("o4-mini", "OpenAI"),
            ("text-embedding-3-small", "OpenAI"),
            ("chatgpt-4o-latest", "OpenAI"),
            ("davinci-002", "OpenAI"),
            ("babbage-002", "OpenAI"),
            ("claude-sonnet-4-5-20250929", "Anthropic"),
            ("anthropic/claude-sonnet-4.5", "Anthropic"),
            ("gemini-2.5-pro", "Google"),
            ("gemma-3-27b-it", "Google"),
            ("palm-2", "Google"),
            ("bard", "Google"),
            ("llama-3.3-70b-versatile", "Meta"),
            ("meta-llama/Llama-4-Scout", "Meta"),
            ("mistral-large-latest", "Mistral AI"),
            ("open-mixtral-8x22b", "Mistral AI"),
            ("magistral-medium-latest", "Mistral AI"),
            ("codestral-2501", "Mistral AI"),
            ("ministral-8b-latest", "Mistral AI"),
            ("pixtral-large-latest", "Mistral AI"),
            ("devstral-small-2505", "Mistral AI"),
            ("qwen/qwen3-coder", "Alibaba"),
            ("Qwen2.5-72B-Instruct", "Alibaba"),
            ("deepseek-reasoner", "DeepSeek"),
            ("grok-4", "xAI"),
            ("command-r-plus", "Cohere"),
            ("minimax/minimax-m2:free", "Other"),
            ("", "Other"),
        ];
        for (model, maker) in cases {
            assert_eq!(rules.provider(model), maker, "{model}");
        }
    }

    #[test]
    fn patterns_match_at_word_starts_only() {
        let rules = ProviderRules::default();
        assert_eq!(rules.provider("foo3"), "Other");
        assert_eq!(rules.provider("foo-o3"), "OpenAI");
        assert_eq!(rules.provider("ollama"), "Other");
        assert_eq!(rules.provider("GPT-4O"), "OpenAI");
    }

    #[test]
    fn leftmost_match_names_the_maker() {
        let rules = ProviderRules::default();
        // "llama" is an earlier rule than "deepseek", but the routing prefix comes first.
        assert_eq!(
            rules.provider("deepseek-ai/DeepSeek-R1-Distill-Llama-70B"),
            "DeepSeek"
        );
        assert_eq!(rules.provider("groq/openai/gpt-oss-120b"), "OpenAI");
        assert_eq!(
            rules.provider("openrouter/anthropic/claude-3.7-sonnet"),
            "Anthropic"
        );
    }

    #[test]
    fn user_rules_win_and_keep_their_order() {
        let rules = ProviderRules::default()
            .with_rule("Claude", "Custom")
            .with_rule("claude", "Second");
        assert_eq!(rules.provider("claude-sonnet-4-5"), "Custom");
        // A user rule further right still beats a built-in one further left.
        let rules = ProviderRules::default().with_rule(String::from("acme"), String::from("Acme"));
        assert_eq!(rules.provider("gpt-acme"), "Acme");
        let catch_all = ProviderRules::empty().with_rule("", "Unknown");
        assert_eq!(catch_all.provider("anything"), "Unknown");
    }

    #[test]
    fn the_records_maker_is_the_providers_and_borrowed_when_its_rule_is_static() {
        let rules = ProviderRules::default()
            .with_rule("acme", String::from("Acme"))
            .with_rule("zeta", "Zeta");
        for model in ["gpt-4o", "acme-1", "zeta-2", "foo3", "claude-opus-4"] {
            assert_eq!(rules.maker(model), rules.provider(model), "{model}");
        }
        assert!(matches!(rules.maker("gpt-4o"), Cow::Borrowed("OpenAI")));
        assert!(matches!(rules.maker("zeta-2"), Cow::Borrowed("Zeta")));
        assert!(matches!(
            rules.maker("foo3"),
            Cow::Borrowed(ProviderRules::OTHER)
        ));
        assert!(matches!(rules.maker("acme-1"), Cow::Owned(_)));
        let none = ProviderRules::empty();
        assert!(matches!(
            none.maker("gpt-4o"),
            Cow::Borrowed(ProviderRules::OTHER)
        ));
    }
}
