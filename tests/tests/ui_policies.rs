//! `fleetctl ui`'s `/policies` end to end, over HTTP: against a real collector and agent, a
//! policy raising the `oom_score_adj` of a `sleep` child (matched by a marker in its argv, so
//! nothing else is touched) is dry-run, then applied with the dry run's token; an apply without
//! that token (or with a used one) is refused and changes nothing; a policy the safety checks
//! refuse gets no confirmation; a second version is rolled back and the policy deleted from the
//! page (the delete clicked through in headless Chromium), each after its confirmation page (a change without its token, or with another
//! change's, is refused); a viewer certificate gets the collector's refusal as a 403 page, for
//! a dry run and for a confirmed rollback or delete alike.

mod policy_common;
mod ui_common;

use std::time::Duration;

use fleet_tests::procs::oom_score_adj as adj;
use fleet_tests::{caps, start_agent, wait_for, wait_for_batches, Collector, Pki};
use policy_common::sleeper;
use ui_common::{get, post_form, start_ui, Browser};

/// `s` as a form value.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// The confirmation token in a dry run's page, if it offers one.
fn token_in(page: &str) -> Option<String> {
    let at = page.find("name=\"token\" value=\"")? + "name=\"token\" value=\"".len();
    Some(page[at..].split('"').next()?.to_owned())
}

#[test]
fn apply_from_the_page_after_a_confirmed_dry_run() {
    let tmp = tempfile::tempdir().unwrap();
    let c = Collector::start(&tmp.path().join("data"), "127.0.0.1:0", &[]);
    let url = c.url();
    // The sleeper first: the agent sends its process list when it connects.
    let marker = format!("fleet-ui-policy-{}", std::process::id());
    let child = sleeper(&marker, 0);
    let pid = child.pid();
    let _agent = start_agent(&url, &tmp.path().join("a1"), "web1", "prod", &[]);
    wait_for_batches(&url, "web1", 2);
    let (_ui, addr) = start_ui(&url, &[], tmp.path());

    let (status, _, page) = get(&addr, "/policies");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("No policies."), "{page}");
    assert!(page.contains("action=\"/policies/dry-run\""), "{page}");

    // The dry run: the plan names the sleeper and its new value, and the page offers the
    // confirmation (once the agent has sent its process list).
    let document = format!(
        "name: ui-raise\ntarget: {{cluster: prod}}\nmatch: {{cmdline: '^{marker} '}}\noom_score_adj: 345\n"
    );
    let form = format!("document={}&cluster=", encode(&document));
    let dry = wait_for(
        "a dry run planning the sleeper",
        Duration::from_secs(30),
        || {
            let (status, _, page) = post_form(&addr, "/policies/dry-run", &form);
            assert_eq!(status, 200, "{page}");
            page.contains(&format!(" {pid} ")).then_some(page)
        },
    );
    assert!(dry.contains("dry run: nothing changed"), "{dry}");
    assert!(dry.contains("345"), "{dry}");
    let token = token_in(&dry).unwrap_or_else(|| panic!("no confirmation: {dry}"));
    assert_eq!(adj(pid), 0, "a dry run changed the process");

    // No token, a wrong one: refused, nothing sent.
    for form in ["", "token=", "token=0123456789abcdef0123456789abcdef"] {
        let (status, _, page) = post_form(&addr, "/policies/apply", form);
        assert_eq!(status, 403, "{form}: {page}");
        assert!(page.contains("no valid confirmation token"), "{page}");
    }
    let (_, _, page) = get(&addr, "/policies");
    assert!(
        page.contains("No policies."),
        "applied without a token: {page}"
    );

    // The token of the dry run applies it, once.
    let (status, _, applied) = post_form(&addr, "/policies/apply", &format!("token={token}"));
    assert_eq!(status, 200, "{applied}");
    assert!(
        applied.contains("policy ui-raise version 1 applied by"),
        "{applied}"
    );
    wait_for("the sleeper at 345", Duration::from_secs(30), || {
        (adj(pid) == 345).then_some(())
    });
    let (status, _, again) = post_form(&addr, "/policies/apply", &format!("token={token}"));
    assert_eq!(status, 403, "a token used twice: {again}");

    // The page: the policy, its version, where it stands on web1.
    let page = wait_for(
        "web1 enforcing on /policies",
        Duration::from_secs(30),
        || {
            let (_, _, page) = get(&addr, "/policies");
            page.contains("enforced").then_some(page)
        },
    );
    assert!(page.contains("data-policy=\"ui-raise\""), "{page}");
    assert!(page.contains("<pre class=\"versions\">"), "{page}");
    assert!(page.contains("web1"), "{page}");

    // A value below 0 on a match that rests on claims alone: refused, no confirmation offered.
    let risky = format!(
        "name: ui-risky\ntarget: {{cluster: prod}}\nmatch: {{cmdline: '^{marker} '}}\noom_score_adj: -500\n"
    );
    let (status, _, page) = post_form(
        &addr,
        "/policies/dry-run",
        &format!("document={}", encode(&risky)),
    );
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Refused"), "{page}");
    assert!(token_in(&page).is_none(), "{page}");
    // A document fleet-policy rejects: a 400 naming the field.
    let (status, _, page) = post_form(&addr, "/policies/dry-run", "document=name%3A+x%0A");
    assert_eq!(status, 400, "{page}");
    assert_eq!(adj(pid), 345);

    // Version 1 alone: nothing to roll back to, only a delete offered.
    let (_, _, page) = get(&addr, "/policies");
    assert!(page.contains("value=\"delete\""), "{page}");
    assert!(!page.contains("value=\"rollback\""), "{page}");

    // Version 2 (456), then rolled back from the page to version 1's 345.
    let v2 = document.replace("345", "456");
    let (_, _, dry) = post_form(
        &addr,
        "/policies/dry-run",
        &format!("document={}&cluster=", encode(&v2)),
    );
    let token = token_in(&dry).unwrap_or_else(|| panic!("no confirmation: {dry}"));
    let (status, _, page) = post_form(&addr, "/policies/apply", &format!("token={token}"));
    assert_eq!(status, 200, "{page}");
    wait_for("the sleeper at 456", Duration::from_secs(30), || {
        (adj(pid) == 456).then_some(())
    });
    let (_, _, page) = get(&addr, "/policies");
    assert!(page.contains("value=\"rollback\""), "{page}");

    let confirm = |action: &str| {
        let (status, _, page) = post_form(
            &addr,
            "/policies/confirm",
            &format!("name=ui-raise&action={action}"),
        );
        assert_eq!(status, 200, "{action}: {page}");
        token_in(&page).unwrap_or_else(|| panic!("no confirmation: {page}"))
    };
    let rollback = confirm("rollback");
    assert_eq!(adj(pid), 456, "asking for a confirmation changed something");
    // Without a token, with an unknown one, with the rollback's token at the apply: refused.
    for (path, form) in [
        ("/policies/change", String::new()),
        (
            "/policies/change",
            "token=0123456789abcdef0123456789abcdef".to_owned(),
        ),
        ("/policies/apply", format!("token={rollback}")),
    ] {
        let (status, _, page) = post_form(&addr, path, &form);
        assert_eq!(status, 403, "{path} {form}: {page}");
    }
    // That token was used up by the apply that refused it: a new confirmation.
    let rollback = confirm("rollback");
    let (status, _, page) = post_form(&addr, "/policies/change", &format!("token={rollback}"));
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains("policy ui-raise rolled back to version 1 as version 3"),
        "{page}"
    );
    wait_for("the sleeper back at 345", Duration::from_secs(30), || {
        (adj(pid) == 345).then_some(())
    });
    let (status, _, page) = post_form(&addr, "/policies/change", &format!("token={rollback}"));
    assert_eq!(status, 403, "a token used twice: {page}");

    // An unknown policy, an unknown action.
    let (status, _, page) = post_form(&addr, "/policies/confirm", "name=nosuch&action=delete");
    assert_eq!(status, 404, "{page}");
    let (status, _, page) = post_form(&addr, "/policies/confirm", "name=ui-raise&action=drop");
    assert_eq!(status, 400, "{page}");

    // Deleted from the page in headless Chromium (its Delete… button, then the confirmation's;
    // over HTTP where Chromium is not installed): the agent gives the sleeper its value back.
    let browser = caps::program("chromium", "chromium")
        .and_then(|chromium| Ok((chromium, caps::program("chromedriver", "chromium-driver")?)));
    let page = match browser {
        Ok((chromium, driver)) => {
            let browser = Browser::start(&driver, &chromium, tmp.path());
            let title = || {
                browser
                    .script("return document.title")
                    .as_str()
                    .unwrap()
                    .to_owned()
            };
            browser.go(&format!("http://{addr}/policies"));
            browser.script(
                "document.querySelector('section[data-policy=\"ui-raise\"] form.change \
                 button[value=\"delete\"]').click()",
            );
            wait_for("the confirmation page", Duration::from_secs(30), || {
                title().starts_with("Delete policy").then_some(())
            });
            assert_eq!(adj(pid), 345, "asking for a confirmation changed something");
            browser
                .script("document.querySelector('form.confirm button[type=\"submit\"]').click()");
            wait_for("the outcome page", Duration::from_secs(30), || {
                title().starts_with("Policy changed").then_some(())
            });
            assert_eq!(browser.console_errors(), Vec::<serde_json::Value>::new());
            let text = browser.script("return document.body.innerText");
            text.as_str().unwrap().to_owned()
        }
        Err(why) => {
            eprintln!("the delete over HTTP: {why}");
            let delete = confirm("delete");
            let (status, _, page) =
                post_form(&addr, "/policies/change", &format!("token={delete}"));
            assert_eq!(status, 200, "{page}");
            page
        }
    };
    assert!(
        page.contains("policy ui-raise deleted (version 4)"),
        "{page}"
    );
    wait_for("the sleeper back at 0", Duration::from_secs(30), || {
        (adj(pid) == 0).then_some(())
    });
    let (_, _, page) = get(&addr, "/policies");
    assert!(page.contains("No policies."), "{page}");
}

#[test]
fn a_viewer_gets_the_collectors_refusal() {
    let tmp = tempfile::tempdir().unwrap();
    let pki = Pki::init(&tmp.path().join("pki"));
    pki.issue("viewer", "viewer", &[]);
    pki.issue("operator", "op", &[]);
    let tls = pki.collector_mtls_args();
    let tls: Vec<&str> = tls.iter().map(String::as_str).collect();
    let c = Collector::spawn(&tmp.path().join("data"), "127.0.0.1:0", &tls);
    let port = c.addr.rsplit(':').next().unwrap().to_owned();
    let url = format!("https://localhost:{port}");
    let args = |name: &str| {
        let mut args = vec!["--tls-ca".to_owned(), pki.ca()];
        args.extend(pki.tls_args(name));
        args
    };
    let (_ui, addr) = start_ui(&url, &args("viewer"), tmp.path());

    let (status, _, page) = wait_for("the viewer's /policies", Duration::from_secs(30), || {
        let answer = get(&addr, "/policies");
        (answer.0 != 502).then_some(answer)
    });
    assert_eq!(status, 200, "a viewer may look: {page}");
    let document = "name: viewer-try\ntarget: {cluster: prod}\nmatch: {comm: nothing-here}\noom_score_adj: 10\n";
    let (status, _, page) = post_form(
        &addr,
        "/policies/dry-run",
        &format!("document={}", encode(document)),
    );
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("may not change policies"), "{page}");
    assert!(token_in(&page).is_none(), "{page}");

    // An operator's console stores a policy; the viewer's may be shown the confirmation of a
    // delete or rollback (that changes nothing), but the change itself is refused as the CLI's.
    let op_dir = tmp.path().join("op");
    std::fs::create_dir_all(&op_dir).unwrap();
    let (_op, op_addr) = start_ui(&url, &args("op"), &op_dir);
    let form = format!("document={}", encode(document));
    let (status, _, dry) = post_form(&op_addr, "/policies/dry-run", &form);
    assert_eq!(status, 200, "{dry}");
    let token = token_in(&dry).unwrap_or_else(|| panic!("no confirmation: {dry}"));
    let (status, _, page) = post_form(&op_addr, "/policies/apply", &format!("token={token}"));
    assert_eq!(status, 200, "{page}");
    for action in ["delete", "rollback"] {
        let (status, _, page) = post_form(
            &addr,
            "/policies/confirm",
            &format!("name=viewer-try&action={action}"),
        );
        assert_eq!(status, 200, "{page}");
        let token = token_in(&page).unwrap_or_else(|| panic!("no confirmation: {page}"));
        let (status, _, page) = post_form(&addr, "/policies/change", &format!("token={token}"));
        assert_eq!(status, 403, "{action}: {page}");
        assert!(page.contains("may not change policies"), "{page}");
    }
    let (_, _, page) = get(&addr, "/policies");
    assert!(page.contains("data-policy=\"viewer-try\""), "{page}");
    assert!(page.contains("version 1"), "{page}");
}
