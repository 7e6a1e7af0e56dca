//! Credits, limits and the admin API: a new user spends their credits down to a 402, is
//! topped up, hits a daily limit (429 with the rate-limit headers, in each API's format),
//! lowers their own limits; the balance survives a restart on SQLite.

use super::*;
use gateway::budget::BudgetConfig;

const ADMIN: &str = "admin-token-for-tests-0123456789";

/// One chat request of gpt-4o-mini, `max_tokens` 24: the mock answers 24 tokens, so the
/// estimate (13 + 24 tokens) is the exact cost.
fn chat_24() -> String {
    Chat.body(false, Some(24)).to_string()
}

fn budget(credits: &str) -> BudgetConfig {
    BudgetConfig {
        initial_credits: credits.parse().unwrap(),
        admin_token: Some(ADMIN.to_owned()),
        ..BudgetConfig::default()
    }
}

fn dec(v: &Value) -> Decimal {
    v.as_str()
        .unwrap_or_else(|| panic!("a decimal string, got {v}"))
        .parse()
        .unwrap()
}

async fn chat(gw: &Harness, key: &str) -> harness::Answer {
    let bearer = format!("Bearer {key}");
    gw.call(
        Method::POST,
        &Chat.path(false),
        &[("authorization", &bearer)],
        chat_24(),
    )
    .await
}

/// `api`'s request (non-streamed, no token limit) with the key in its SDK's header.
async fn call_api(gw: &Harness, key: &str, api: Api) -> harness::Answer {
    let bearer = format!("Bearer {key}");
    gw.call(
        Method::POST,
        &api.path(false),
        &[("authorization", &bearer)],
        api.body(false, None).to_string(),
    )
    .await
}

async fn admin(gw: &Harness, method: Method, path: &str, body: Value) -> harness::Answer {
    let bearer = format!("Bearer {ADMIN}");
    gw.call(
        method,
        path,
        &[("authorization", &bearer)],
        body.to_string(),
    )
    .await
}

async fn credits(gw: &Harness, key: &str) -> Value {
    let answer = gw.get("/user/credits", key).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    answer.json()
}

#[tokio::test]
async fn credits_run_out_are_topped_up_and_limits_refuse_in_each_apis_shape() {
    let gw = Harness::with_budget(Storage::memory(), budget("0.0001")).await;
    let answer = gw
        .call(
            Method::POST,
            "/auth/register",
            &[],
            json!({"email": "ada@example.com"}).to_string(),
        )
        .await;
    assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
    let reg = answer.json();
    assert_eq!(dec(&reg["credits"]), Decimal::new(1, 4));
    let (user, key) = (
        reg["user_id"].as_str().unwrap().to_owned(),
        reg["api_key"].as_str().unwrap().to_owned(),
    );
    let each = cost("gpt-4o-mini", 24);

    // $0.0001 covers exactly six requests.
    let fits = (Decimal::new(1, 4) / each).floor();
    assert_eq!(fits, Decimal::from(6));
    for i in 0..6 {
        let a = chat(&gw, &key).await;
        assert_eq!(a.status, StatusCode::OK, "request {i}: {}", a.text());
    }
    let refused = chat(&gw, &key).await;
    assert_eq!(
        refused.status,
        StatusCode::PAYMENT_REQUIRED,
        "{}",
        refused.text()
    );
    let body = refused.json();
    assert_eq!(body["error"]["type"], "insufficient_credits");
    assert_eq!(body["error"]["code"], "insufficient_credits");
    assert!(
        refused.headers.get("retry-after").is_none(),
        "waiting does not help"
    );
    for (api, check) in [
        (Anthropic, "/error/type"),
        (Gemini, "/error/status"),
        (Responses, "/error/type"),
    ] {
        let a = call_api(&gw, &key, api).await;
        assert_eq!(
            a.status,
            StatusCode::PAYMENT_REQUIRED,
            "{api:?}: {}",
            a.text()
        );
        let v = a.json();
        let expected = if api == Gemini {
            "RESOURCE_EXHAUSTED"
        } else {
            "insufficient_credits"
        };
        assert_eq!(v.pointer(check).unwrap(), expected, "{api:?}: {v}");
    }
    let c = credits(&gw, &key).await;
    let spent = each * Decimal::from(6);
    assert_eq!(dec(&c["balance"]), Decimal::new(1, 4) - spent);
    assert_eq!(dec(&c["spent_today"]), spent);
    assert_eq!(dec(&c["spent_this_month"]), spent);
    assert_eq!(dec(&c["reserved"]), Decimal::ZERO);
    assert_eq!(c["limits"]["daily_spend"], Value::Null);

    // The admin tops up; the user can spend again.
    let top = admin(
        &gw,
        Method::POST,
        &format!("/admin/users/{user}/credits"),
        json!({"amount": "5.00"}),
    )
    .await;
    assert_eq!(top.status, StatusCode::OK, "{}", top.text());
    assert_eq!(
        dec(&top.json()["balance"]),
        Decimal::new(5, 0) + Decimal::new(1, 4) - spent
    );
    assert_eq!(chat(&gw, &key).await.status, StatusCode::OK);

    // A daily limit two requests above today's spend, and request and token caps.
    let spent = each * Decimal::from(7);
    let daily = spent + each * Decimal::from(2) + Decimal::new(1, 8);
    let set = admin(
        &gw,
        Method::PUT,
        &format!("/admin/users/{user}/limits"),
        json!({"daily_spend": daily.to_string(), "requests_per_minute": 100, "tokens_per_day": 100000}),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text());
    assert_eq!(dec(&set.json()["limits"]["daily_spend"]), daily);
    for _ in 0..2 {
        let a = chat(&gw, &key).await;
        assert_eq!(a.status, StatusCode::OK, "{}", a.text());
        assert_eq!(a.headers["x-ratelimit-limit-requests"], "100");
        assert_eq!(a.headers["x-ratelimit-limit-tokens"], "100000");
        assert!(a.headers.contains_key("x-ratelimit-remaining-tokens"));
    }
    // The daily limit refuses each API in its own shape, with `retry-after` = the seconds to
    // UTC midnight and the `x-ratelimit-*` of the minute's request cap and the day's token cap.
    for api in [Chat, Responses, Anthropic, Gemini] {
        let before = chrono::Utc::now();
        let limited = if api == Chat {
            chat(&gw, &key).await
        } else {
            call_api(&gw, &key, api).await
        };
        let after = chrono::Utc::now();
        assert_eq!(
            limited.status,
            StatusCode::TOO_MANY_REQUESTS,
            "{api:?}: {}",
            limited.text()
        );
        let v = limited.json();
        match api {
            Anthropic => {
                assert_eq!(v["type"], "error", "{v}");
                assert_eq!(v["error"]["type"], "rate_limit_error", "{v}");
            }
            Gemini => {
                assert_eq!(v["error"]["code"], 429, "{v}");
                assert_eq!(v["error"]["status"], "RESOURCE_EXHAUSTED", "{v}");
                assert_eq!(v["error"]["details"][0]["reason"], "BUDGET_EXCEEDED", "{v}");
                assert_eq!(
                    v["error"]["details"][0]["metadata"]["limit"],
                    "spend_limit_day"
                );
            }
            _ => {
                assert_eq!(v["error"]["type"], "budget_exceeded", "{v}");
                assert_eq!(v["error"]["code"], "spend_limit_day", "{v}");
            }
        }
        let message = v.pointer("/error/message").and_then(Value::as_str).unwrap();
        assert!(message.contains("per day"), "{api:?}: {message}");
        let midnight = tower_activity::budget::Window::Day.end(after).unwrap();
        let header = |name: &str| limited.headers[name].to_str().unwrap().to_owned();
        // Whole seconds, rounded up, from the admission (between `before` and `after`).
        let seconds = |d: chrono::TimeDelta| (d.num_milliseconds() as u64).div_ceil(1000);
        let retry: u64 = header("retry-after").parse().unwrap();
        assert!(
            (seconds(midnight - after)..=seconds(midnight - before)).contains(&retry),
            "{api:?}: retry-after {retry} is the time to midnight"
        );
        let reset_tokens = super::fleet_rollover::go_duration(&header("x-ratelimit-reset-tokens"));
        assert_eq!(
            reset_tokens.num_seconds() as u64,
            retry,
            "{api:?}: the day's token cap resets at midnight too"
        );
        let reset_requests =
            super::fleet_rollover::go_duration(&header("x-ratelimit-reset-requests"));
        assert!(
            reset_requests <= chrono::TimeDelta::minutes(1),
            "{api:?}: the request cap is the minute's"
        );
        assert_eq!(header("x-ratelimit-limit-requests"), "100", "{api:?}");
        assert_eq!(header("x-ratelimit-limit-tokens"), "100000", "{api:?}");
        // (The minute may have turned during the test: at most 9 requests in this one.)
        let left: u64 = header("x-ratelimit-remaining-requests").parse().unwrap();
        assert!((91..=100).contains(&left), "{api:?}: {left}");
        // Nine requests of 13 + 24 tokens today; refusals take nothing.
        assert_eq!(
            header("x-ratelimit-remaining-tokens"),
            (100_000 - 9 * 37).to_string(),
            "{api:?}"
        );
    }

    // The user lowers their own limits, not above the admin's.
    let bearer = format!("Bearer {key}");
    let put = |body: Value| {
        let bearer = bearer.clone();
        let gw = &gw;
        async move {
            gw.call(
                Method::PUT,
                "/user/limits",
                &[("authorization", &bearer)],
                body.to_string(),
            )
            .await
        }
    };
    let above = put(json!({"requests_per_minute": 101})).await;
    assert_eq!(above.status, StatusCode::BAD_REQUEST, "{}", above.text());
    assert_eq!(above.json()["error"]["parameter"], "requests_per_minute");
    let lower = put(json!({"requests_per_minute": 10, "monthly_spend": "3"})).await;
    assert_eq!(lower.status, StatusCode::OK, "{}", lower.text());
    assert_eq!(lower.json()["limits"]["requests_per_minute"], "10");
    assert_eq!(lower.json()["limits"]["monthly_spend"], "3");
    let c = credits(&gw, &key).await;
    assert_eq!(c["limits"]["requests_per_minute"], "10");
    assert!(dec(&c["usage"]["requests_per_minute"]) <= Decimal::from(9));
    let back = put(json!({"requests_per_minute": null})).await;
    assert_eq!(
        back.json()["limits"]["requests_per_minute"],
        "100",
        "the admin's again"
    );

    // The feed and log carry the budget's events.
    let log = gw.log(&key, "kind=event&limit=100").await;
    let names: Vec<&str> = log["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["endpoint"].as_str().unwrap())
        .collect();
    for name in [
        "register",
        "budget.refused",
        "credits.topup",
        "budget.threshold",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    let register = log["logs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["endpoint"] == "register")
        .unwrap();
    assert_eq!(register["metadata"]["credits"], "0.0001");
    // Refused requests were never sent: the log's requests are exactly the admitted ones, and
    // their cost is the ledger's spend.
    let requests = gw.log(&key, "kind=request&limit=100").await;
    assert_eq!(requests["total"], 9);
    let logged: Decimal = requests["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| record(r).cost_usd.unwrap())
        .sum();
    assert_eq!(dec(&credits(&gw, &key).await["spent_today"]), logged);
}

#[tokio::test]
async fn the_admin_api_needs_its_token_and_exists_only_with_one() {
    let gw = Harness::start(Storage::memory()).await;
    let (user, key) = gw.register("bo@example.com").await;
    let a = admin(
        &gw,
        Method::POST,
        &format!("/admin/users/{user}/credits"),
        json!({"amount": "1"}),
    )
    .await;
    assert_eq!(
        a.status,
        StatusCode::NOT_FOUND,
        "no ADMIN_TOKEN, no admin API"
    );
    // The tests' grant ($1.00 is the variable's default, see the unit tests).
    assert_eq!(
        dec(&credits(&gw, &key).await["balance"]),
        Decimal::from(1000)
    );

    let gw = Harness::with_budget(Storage::memory(), budget("1")).await;
    let (user, key) = gw.register("cy@example.com").await;
    let path = format!("/admin/users/{user}/credits");
    let as_user = gw.post(&path, &key, &json!({"amount": "1"})).await;
    assert_eq!(
        as_user.status,
        StatusCode::UNAUTHORIZED,
        "a user's key is not the admin's"
    );
    let bad = admin(&gw, Method::POST, &path, json!({"amount": "-2"})).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["error"]["parameter"], "amount");
    let bad = admin(
        &gw,
        Method::PUT,
        &format!("/admin/users/{user}/limits"),
        json!({"weekly": 1}),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.json()["error"]["parameter"], "weekly");
}

#[tokio::test]
async fn balances_and_limits_survive_a_restart_on_sqlite() {
    let db = TempDb::new();
    let gw = Harness::with_budget(Storage::open(&db.url()).await.unwrap(), budget("0.5")).await;
    let (user, key) = gw.register("di@example.com").await;
    for stream in [false, true] {
        let bearer = format!("Bearer {key}");
        let a = gw
            .call(
                Method::POST,
                &Chat.path(stream),
                &[("authorization", &bearer)],
                Chat.body(stream, Some(24)).to_string(),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK);
    }
    let top = admin(
        &gw,
        Method::POST,
        &format!("/admin/users/{user}/credits"),
        json!({"amount": "2"}),
    )
    .await;
    assert_eq!(top.status, StatusCode::OK, "{}", top.text());
    let set = admin(
        &gw,
        Method::PUT,
        &format!("/admin/users/{user}/limits"),
        json!({"daily_spend": "1.5"}),
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.text());
    let before = credits(&gw, &key).await;
    let mut gw = gw;
    gw.stop().await;
    drop(gw);

    let gw = Harness::with_budget(Storage::open(&db.url()).await.unwrap(), budget("0.5")).await;
    let after = credits(&gw, &key).await;
    assert_eq!(after["balance"], before["balance"]);
    assert_eq!(after["spent_today"], before["spent_today"]);
    assert_eq!(after["limits"], before["limits"]);
    assert_eq!(
        dec(&after["balance"]),
        Decimal::new(25, 1) - cost("gpt-4o-mini", 24) * Decimal::TWO
    );
}

/// Without a stated output limit a request reserves `BUDGET_DEFAULT_OUTPUT_TOKENS` (8 here)
/// and the mock answers 24: twenty concurrent streams pass a balance of six reservations by
/// at most the excess of the requests admitted, `admitted × (cost(24) − cost(8))` — the bound
/// of the `budget` module's docs — and the ledger still equals the log.
#[tokio::test]
async fn without_max_tokens_the_overshoot_stays_within_the_estimate_bound() {
    let (reserved, actual) = (cost("gpt-4o-mini", 8), cost("gpt-4o-mini", 24));
    let credit = reserved * Decimal::from(6);
    let config = BudgetConfig {
        initial_credits: credit,
        default_output_tokens: 8,
        ..BudgetConfig::default()
    };
    let gw = Harness::with_budget(Storage::memory(), config).await;
    let (user, key) = gw.register("ed@example.com").await;
    let bearer = format!("Bearer {key}");
    let headers = [
        ("authorization", bearer.as_str()),
        // Streams of 1.6 s: the admissions are decided while the first ones still run.
        ("x-mock-delay-ms", "200"),
        ("x-mock-chunks", "8"),
    ];
    let (path, body) = (Chat.path(true), Chat.body(true, None).to_string());
    let answers = futures_util::future::join_all(
        (0..20).map(|_| gw.call(Method::POST, &path, &headers, body.clone())),
    )
    .await;
    let admitted = answers
        .iter()
        .filter(|a| a.status == StatusCode::OK)
        .count();
    let refused = answers
        .iter()
        .filter(|a| a.status == StatusCode::PAYMENT_REQUIRED)
        .count();
    assert_eq!(admitted + refused, 20, "every answer a 200 or a 402");
    // However the admissions interleave with the settlements, at least three fit: the third
    // still finds a reservation's worth left after two settled at their full cost.
    assert!(admitted >= 3, "{admitted} admitted");
    let c = credits(&gw, &key).await;
    let spent = actual * Decimal::from(admitted as u64);
    assert_eq!(
        dec(&c["balance"]),
        credit - spent,
        "each settled at its exact cost"
    );
    assert_eq!(dec(&c["reserved"]), Decimal::ZERO);
    let overshoot = spent - credit;
    let bound = (actual - reserved) * Decimal::from(admitted as u64);
    assert!(overshoot > Decimal::ZERO, "the balance was passed");
    assert!(
        overshoot <= bound,
        "overshoot {overshoot} within the bound {bound}"
    );
    let requests = wait_for_rows(&gw, &key, "kind=request&limit=100", admitted as u64).await;
    let logged: Decimal = requests["logs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| record(r).cost_usd.unwrap())
        .sum();
    assert_eq!(logged, spent, "ledger == SUM(cost_usd) of {user}'s log");
    println!(
        "memory, 1 gateway, no max_tokens: 20 requests, {admitted} admitted, {refused} refused, \
         credit ${credit}, overshoot ${overshoot} (bound ${bound}), ledger ${spent} vs log ${logged}"
    );
}

/// The admin API names users by id: an id nobody registered is a `404` naming it, on every
/// account store, while a registered user's id works.
#[tokio::test]
async fn the_admin_api_answers_404_for_an_unknown_user() {
    let sqlite = TempDb::new();
    let pg = TempPg::new().await;
    for (name, url) in [
        ("memory", "memory:".to_owned()),
        ("sqlite", sqlite.url()),
        ("postgres", pg.url()),
    ] {
        let storage = Storage::open(&url).await.unwrap();
        let mut gw = Harness::with_budget(storage, budget("1")).await;
        let (user, _) = gw.register(&format!("fay-{name}@example.com")).await;
        let unknown = "0190c0de-0000-7000-8000-00000000dead";
        for (method, what, body) in [
            (Method::POST, "credits", json!({"amount": "5.00"})),
            (Method::PUT, "limits", json!({"daily_spend": "2.00"})),
        ] {
            let a = admin(
                &gw,
                method.clone(),
                &format!("/admin/users/{unknown}/{what}"),
                body.clone(),
            )
            .await;
            assert_eq!(
                a.status,
                StatusCode::NOT_FOUND,
                "{name} {what}: {}",
                a.text()
            );
            let error = &a.json()["error"];
            assert_eq!(error["type"], "not_found", "{name} {what}");
            let message = error["message"].as_str().unwrap();
            assert!(message.contains(unknown), "{name} {what}: {message}");
            let known = admin(&gw, method, &format!("/admin/users/{user}/{what}"), body).await;
            assert_eq!(
                known.status,
                StatusCode::OK,
                "{name} {what}: {}",
                known.text()
            );
        }
        gw.stop().await;
    }
    pg.drop_database().await;
}

#[tokio::test]
async fn without_spend_control_requests_are_accounted_but_never_refused() {
    let (mock, _task) = mock_upstream::spawn(mock_upstream::MockConfig::default())
        .await
        .expect("the mock upstream starts");
    let mut config = gateway::GatewayConfig::for_upstream(UpstreamUrl::local(mock));
    // No credits at all: with spend control on, every request would be a 402.
    config.budget = budget("0");
    config.budget_enabled = false;
    let gw = Harness::with_config(Storage::memory(), &config).await;
    let (_user, key) = gw.register("nb@example.com").await;
    for _ in 0..3 {
        let answer = chat(&gw, &key).await;
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
    gw.flush().await;
    let log = gw.log(&key, "kind=request").await;
    assert_eq!(
        log["logs"].as_array().map(Vec::len),
        Some(3),
        "every request is still recorded: {log}"
    );
    let credits = gw.get("/user/credits", &key).await;
    assert_eq!(credits.status, StatusCode::NOT_FOUND, "{}", credits.text());
    assert!(
        credits.text().contains("GATEWAY_BUDGET=off"),
        "the 404 says why: {}",
        credits.text()
    );
}
