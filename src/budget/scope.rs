//! [`Scope`]: whose counter a request is charged to — its user, API key, an app tag, its
//! model, or any key the application derives from the request.

use std::fmt;
use std::sync::Arc;

use http::request::Parts;

use crate::attribution::Attribution;

/// The id of the API key a request was made with, for [`Scope::ApiKey`]: the application's
/// auth middleware inserts it into the request extensions (an id, never the secret itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyId(pub String);

/// Derives a subject from a request head (see [`Scope::custom`]).
type Derive = dyn Fn(&Parts) -> Option<String> + Send + Sync;

/// Whose counter a limit applies to. Each scope turns a request into a *subject*, the name
/// its counters are kept under: `user:{id}`, `key:{id}`, `tag:{name}:{value}`,
/// `model:{model}`, `{name}:{value}`. A request the scope names no subject for (no user, no
/// such tag) is not counted there.
///
/// ```
/// use tower_activity::budget::Scope;
///
/// let team = Scope::custom("team", |parts| {
///     parts.headers.get("x-team")?.to_str().ok().map(str::to_owned)
/// });
/// assert_eq!(team.name(), "team");
/// assert_eq!(Scope::tag("project").name(), "tag:project");
/// ```
#[derive(Clone)]
pub enum Scope {
    /// The [`Attribution`]'s `user_id` (request extensions, else the layer's hook).
    User,
    /// The [`ApiKeyId`] in the request extensions.
    ApiKey,
    /// The value of one [`Attribution`] tag (a string, number or boolean).
    Tag(String),
    /// The model the request names (its body's `model`, or a Gemini path's).
    Model,
    /// Any key the application derives from the request head.
    Custom {
        /// The subject's prefix (`{name}:{value}`).
        name: String,
        /// Returns the value, or `None` when the request is not counted here.
        derive: Arc<Derive>,
    },
}

impl Scope {
    /// A [`Scope::Tag`].
    pub fn tag(name: impl Into<String>) -> Self {
        Scope::Tag(name.into())
    }

    /// A [`Scope::Custom`] named `name` (the subject is `{name}:{value}`).
    pub fn custom(
        name: impl Into<String>,
        derive: impl Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        Scope::Custom {
            name: name.into(),
            derive: Arc::new(derive),
        }
    }

    /// The scope's name: `user`, `key`, `tag:{name}`, `model`, or the custom name. Two
    /// scopes with the same name are the same scope.
    pub fn name(&self) -> String {
        match self {
            Scope::User => "user".to_owned(),
            Scope::ApiKey => "key".to_owned(),
            Scope::Tag(tag) => format!("tag:{tag}"),
            Scope::Model => "model".to_owned(),
            Scope::Custom { name, .. } => name.clone(),
        }
    }

    /// The subject of a request in this scope, if it has one.
    pub(crate) fn subject(
        &self,
        parts: &Parts,
        who: Option<&Attribution>,
        model: Option<&str>,
    ) -> Option<Arc<str>> {
        Some(match self {
            Scope::User => join(&["user", who?.user_id.as_deref()?]),
            Scope::ApiKey => join(&["key", &parts.extensions.get::<ApiKeyId>()?.0]),
            Scope::Tag(tag) => match who?.tags.get(tag)? {
                serde_json::Value::String(s) => join(&["tag", tag, s]),
                v @ (serde_json::Value::Number(_) | serde_json::Value::Bool(_)) => {
                    join(&["tag", tag, &v.to_string()])
                }
                _ => return None,
            },
            Scope::Model => join(&["model", model?]),
            Scope::Custom { name, derive } => join(&[name, &derive(parts)?]),
        })
    }

    /// Whether `self` and `other` give every request the same subject (so one is built
    /// once per request however many windows track the scope): the same kind, tag, or
    /// custom name and function.
    pub(crate) fn same_subjects(&self, other: &Scope) -> bool {
        match (self, other) {
            (Scope::User, Scope::User)
            | (Scope::ApiKey, Scope::ApiKey)
            | (Scope::Model, Scope::Model) => true,
            (Scope::Tag(a), Scope::Tag(b)) => a == b,
            (Scope::Custom { name: a, derive: f }, Scope::Custom { name: b, derive: g }) => {
                a == b && Arc::ptr_eq(f, g)
            }
            _ => false,
        }
    }
}

/// `parts` joined with `:`.
fn join(parts: &[&str]) -> Arc<str> {
    parts.join(":").into()
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

impl PartialEq for Scope {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects() {
        let mut req = http::Request::new(());
        req.extensions_mut().insert(ApiKeyId("k1".into()));
        let (parts, ()) = req.into_parts();
        let who = Attribution::user("u1").tag("team", "search").tag("tier", 2);
        let s = |scope: Scope| scope.subject(&parts, Some(&who), Some("gpt-4o"));
        assert_eq!(s(Scope::User).as_deref(), Some("user:u1"));
        assert_eq!(s(Scope::ApiKey).as_deref(), Some("key:k1"));
        assert_eq!(s(Scope::tag("team")).as_deref(), Some("tag:team:search"));
        assert_eq!(s(Scope::tag("tier")).as_deref(), Some("tag:tier:2"));
        assert_eq!(s(Scope::tag("missing")), None);
        assert_eq!(s(Scope::Model).as_deref(), Some("model:gpt-4o"));
        let fixed = Scope::custom("org", |_| Some("acme".into()));
        assert_eq!(s(fixed).as_deref(), Some("org:acme"));
        assert_eq!(Scope::User.subject(&parts, None, None), None);
    }

    #[test]
    fn same_subjects_only_where_every_request_gets_the_same() {
        let org = Scope::custom("org", |_| Some("acme".into()));
        let other_org = Scope::custom("org", |_| Some("other".into()));
        assert!(Scope::User.same_subjects(&Scope::User));
        assert!(Scope::tag("team").same_subjects(&Scope::tag("team")));
        assert!(org.same_subjects(&org.clone()));
        // Equal by name (`PartialEq`), but their functions may name different subjects.
        assert!(org == other_org && !org.same_subjects(&other_org));
        assert!(!Scope::tag("team").same_subjects(&Scope::tag("tier")));
        assert!(!Scope::User.same_subjects(&Scope::ApiKey));
        assert!(!Scope::custom("user", |_| None).same_subjects(&Scope::User));
    }
}
