use super::*;

fn args(list: &[&str]) -> Vec<OsString> {
    list.iter().map(OsString::from).collect()
}

fn run(list: &[&str]) -> Cli {
    match parse(args(list)) {
        Ok(Parsed::Run(cli)) => *cli,
        other => panic!("{list:?}: {other:?}"),
    }
}

fn problem(list: &[&str]) -> Problem {
    match parse(args(list)) {
        Err(e) => e.problem,
        other => panic!("{list:?}: {other:?}"),
    }
}

fn printed(list: &[&str]) -> String {
    match parse(args(list)) {
        Ok(Parsed::Help(text) | Parsed::Version(text)) => text,
        other => panic!("{list:?}: {other:?}"),
    }
}

/// Every flag, as the tests' agents and deploy/ give them (`--flag value`).
const EVERY_FLAG: &[&str] = &[
    "--collector",
    "https://c:7443",
    "--state-dir",
    "/var/lib/fleet-agent",
    "--host-id",
    "web1",
    "--hostname",
    "web1.example",
    "--cluster",
    "prod",
    "--label",
    "role=web",
    "--interval",
    "1s",
    "--proc-root",
    "/p",
    "--sys-root",
    "/s",
    "--insecure",
    "--tls-ca",
    "/ca.pem",
    "--tls-cert",
    "/cert.pem",
    "--tls-key",
    "/key.pem",
    "--spool-max-mib",
    "8",
    "--kmsg-path",
    "/dev/kmsg",
    "--top-oom-limit",
    "0",
    "--ntp-server",
    "127.0.0.1:123",
    "--config",
    "/etc/fleet/agent.toml",
    "--check-config",
];

fn every_flag() -> Cli {
    Cli {
        options: Options {
            collector: Some("https://c:7443".into()),
            state_dir: Some("/var/lib/fleet-agent".into()),
            host_id: Some("web1".into()),
            hostname: Some("web1.example".into()),
            cluster: Some("prod".into()),
            labels: vec![Label::Flag("role=web".into())],
            interval: Some("1s".into()),
            proc_root: Some("/p".into()),
            sys_root: Some("/s".into()),
            insecure: true,
            tls_ca: Some("/ca.pem".into()),
            tls_cert: Some("/cert.pem".into()),
            tls_key: Some("/key.pem".into()),
            spool_max_mib: Some(8),
            kmsg_path: Some("/dev/kmsg".into()),
            top_oom_limit: Some(0),
            ntp_servers: vec!["127.0.0.1:123".into()],
            ..Options::default()
        },
        config: Some("/etc/fleet/agent.toml".into()),
        check_config: true,
        command: None,
    }
}

#[test]
fn every_flag_in_both_forms() {
    assert_eq!(run(EVERY_FLAG), every_flag());
    // The same with every value joined: `--flag=value`.
    let mut joined = Vec::new();
    let mut list = EVERY_FLAG.iter().peekable();
    while let Some(flag) = list.next() {
        match list.next_if(|v| !v.starts_with("--")) {
            Some(value) => joined.push(format!("{flag}={value}")),
            None => joined.push(flag.to_string()),
        }
    }
    let joined: Vec<&str> = joined.iter().map(String::as_str).collect();
    assert_eq!(joined[0], "--collector=https://c:7443");
    assert_eq!(run(&joined), every_flag());
    assert_eq!(run(&[]), Cli::default());
}

#[test]
fn every_flag_is_in_the_table_and_the_help() {
    let help = printed(&["--help"]);
    for flag in FLAGS {
        let line = help
            .lines()
            .find(|l| l.trim_start().starts_with(&flag.spec()))
            .unwrap_or_else(|| panic!("--{} not in help:\n{help}", flag.name));
        assert!(line.ends_with(flag.help), "{line}");
        assert!(
            EVERY_FLAG.contains(&format!("--{}", flag.name).as_str()) || flag.name == "no-kmsg",
            "--{} is not tested",
            flag.name
        );
    }
    assert!(help.starts_with(ABOUT), "{help}");
    assert!(help.contains("\nUsage: fleet-agent [OPTIONS] [COMMAND]\n"));
    assert!(help.contains("\n  release-policies  Gives every process"));
    assert!(help.contains(
        "\n      --spool-max-mib <SPOOL_MAX_MIB>  Upper bound of the on-disk spool in MiB \
         (default 64); oldest samples go first when full\n"
    ));
    assert!(help.contains("\n  -h, --help                           Print help\n"));
    assert!(help.ends_with("  -V, --version                        Print version\n"));
    assert_eq!(printed(&["-h"]), help);
    assert_eq!(printed(&["help"]), help);
    assert_eq!(printed(&["--insecure", "--help", "--bogus"]), help);
    assert_eq!(
        printed(&["--version"]),
        format!("fleet-agent {}", env!("CARGO_PKG_VERSION"))
    );
    assert_eq!(printed(&["-V"]), printed(&["--version"]));
}

#[test]
fn repeatable_flags_keep_every_value_in_order() {
    let cli = run(&[
        "--label",
        "a=1",
        "--ntp-server=x:1",
        "--label=b=2=3",
        "--ntp-server",
        "y:2",
    ]);
    assert_eq!(
        cli.options.labels,
        [Label::Flag("a=1".into()), Label::Flag("b=2=3".into())]
    );
    assert_eq!(cli.options.ntp_servers, ["x:1", "y:2"]);
}

#[test]
fn a_flag_given_twice_is_refused_unless_repeatable() {
    for list in [
        &["--collector", "a", "--collector=b"][..],
        &["--insecure", "--insecure"],
        &["--kmsg-path=/x", "--kmsg-path", "/y"],
    ] {
        let Problem::Repeated(flag) = problem(list) else {
            panic!("{list:?}")
        };
        assert!(
            flag.starts_with(list[0].split('=').next().unwrap()),
            "{flag}"
        );
    }
    assert_eq!(
        problem(&["--collector", "a", "--collector=b"]).to_string(),
        "the argument '--collector <COLLECTOR>' cannot be used multiple times"
    );
}

#[test]
fn unknown_flags_and_commands_are_named() {
    assert_eq!(problem(&["--bogus"]), Problem::Unexpected("--bogus".into()));
    assert_eq!(
        problem(&["--insecure", "--bogus=1"]),
        Problem::Unexpected("--bogus".into())
    );
    assert_eq!(problem(&["-x"]), Problem::Unexpected("-x".into()));
    // Not abbreviated.
    assert_eq!(
        problem(&["--coll", "x"]),
        Problem::Unexpected("--coll".into())
    );
    assert_eq!(problem(&["bogus"]), Problem::UnknownCommand("bogus".into()));
    assert_eq!(problem(&["-"]), Problem::UnknownCommand("-".into()));
    assert_eq!(
        problem(&["--", "--insecure"]),
        Problem::UnknownCommand("--insecure".into())
    );
    assert_eq!(
        problem(&["help", "bogus"]),
        Problem::UnknownCommand("bogus".into())
    );
    let e = parse(args(&["--bogus"])).unwrap_err();
    assert_eq!(
        e.render(),
        "error: unexpected argument '--bogus' found\n\nUsage: fleet-agent [OPTIONS] \
         [COMMAND]\n\nFor more information, try '--help'.\n"
    );
    // The daemon's flags go before a subcommand.
    let e = parse(args(&["parse-kmsg", "--collector", "x", "f"])).unwrap_err();
    assert_eq!(e.problem, Problem::Unexpected("--collector".into()));
    assert_eq!(e.command, Some("parse-kmsg"));
    assert!(e
        .render()
        .contains("\nUsage: fleet-agent parse-kmsg [OPTIONS] <FILE>\n"));
}

#[test]
fn missing_and_bad_values_name_the_flag() {
    let missing = |flag: &str| Problem::MissingValue(flag.into());
    assert_eq!(
        problem(&["--collector"]),
        missing("--collector <COLLECTOR>")
    );
    // A value that looks like a flag is not taken: join it.
    assert_eq!(
        problem(&["--collector", "--insecure"]),
        missing("--collector <COLLECTOR>")
    );
    assert_eq!(
        problem(&["--state-dir", "-odd"]),
        missing("--state-dir <STATE_DIR>")
    );
    assert_eq!(
        run(&["--state-dir=-odd"]).options.state_dir,
        Some("-odd".into())
    );
    assert_eq!(
        run(&["--state-dir", "-"]).options.state_dir,
        Some("-".into())
    );
    assert_eq!(
        problem(&["--state-dir="]),
        missing("--state-dir <STATE_DIR>")
    );
    assert_eq!(problem(&["--label", ""]), missing("--label <K=V>"));
    assert_eq!(
        problem(&["--spool-max-mib", "x"]),
        Problem::BadValue {
            flag: "--spool-max-mib <SPOOL_MAX_MIB>".into(),
            value: "x".into(),
            why: "invalid digit found in string".into()
        }
    );
    assert_eq!(
        problem(&["--top-oom-limit=-1"]).to_string(),
        "invalid value '-1' for '--top-oom-limit <TOP_OOM_LIMIT>': invalid digit found in \
         string"
    );
    let Problem::BadValue { why, .. } = problem(&["--spool-max-mib", "99999999999999999999"])
    else {
        panic!()
    };
    assert_eq!(why, "number too large to fit in target type");
    assert_eq!(
        problem(&["--insecure=true"]),
        Problem::NoValueTaken {
            flag: "--insecure".into(),
            value: "true".into()
        }
    );
    assert_eq!(
        problem(&["--check-config=1"]).to_string(),
        "unexpected value '1' for '--check-config' found; no more were expected"
    );
}

#[test]
fn kmsg_path_conflicts_with_no_kmsg_named_in_order() {
    assert!(run(&["--no-kmsg"]).options.no_kmsg);
    assert_eq!(
        problem(&["--kmsg-path", "/x", "--no-kmsg"]),
        Problem::Conflict("--kmsg-path <KMSG_PATH>".into(), "--no-kmsg".into())
    );
    assert_eq!(
        problem(&["--no-kmsg", "--insecure", "--kmsg-path=/x"]).to_string(),
        "the argument '--no-kmsg' cannot be used with '--kmsg-path <KMSG_PATH>'"
    );
    // Help wins over a conflict, as it does over anything after it.
    assert!(printed(&["--no-kmsg", "--kmsg-path=/x", "-h"]).starts_with(ABOUT));
}

#[test]
fn paths_need_not_be_utf8_but_text_must() {
    let odd = OsStr::from_bytes(b"/tmp/caf\xe9").to_os_string();
    let mut list = args(&["--state-dir"]);
    list.push(odd.clone());
    let mut joined = OsString::from("--tls-ca=");
    joined.push(&odd);
    list.push(joined);
    list.extend(args(&["parse-kmsg", "--format=kmsg"]));
    list.push(odd.clone());
    let Ok(Parsed::Run(cli)) = parse(list) else {
        panic!()
    };
    assert_eq!(cli.options.state_dir.as_deref(), Some(odd.as_ref()));
    assert_eq!(cli.options.tls_ca.as_deref(), Some(odd.as_ref()));
    assert_eq!(
        cli.command,
        Some(Command::ParseKmsg {
            format: InputFormat::Kmsg,
            file: odd.clone().into()
        })
    );
    let mut list = args(&["--host-id"]);
    list.push(odd);
    let Err(e) = parse(list) else { panic!() };
    assert_eq!(
        e.problem,
        Problem::BadValue {
            flag: "--host-id <HOST_ID>".into(),
            value: "/tmp/caf\u{fffd}".into(),
            why: "invalid UTF-8 was detected".into()
        }
    );
}

#[test]
fn parse_kmsg_takes_one_file_dash_for_stdin_and_a_format() {
    let kmsg = |format, file: &str| {
        Some(Command::ParseKmsg {
            format,
            file: file.into(),
        })
    };
    assert_eq!(
        run(&["parse-kmsg", "f.log"]).command,
        kmsg(InputFormat::Auto, "f.log")
    );
    assert_eq!(
        run(&["parse-kmsg", "-"]).command,
        kmsg(InputFormat::Auto, "-")
    );
    assert_eq!(
        run(&["parse-kmsg", "--format", "dmesg", "-"]).command,
        kmsg(InputFormat::Dmesg, "-")
    );
    assert_eq!(
        run(&["parse-kmsg", "-", "--format=journal"]).command,
        kmsg(InputFormat::Syslog, "-")
    );
    // After `--`, a file may look like a flag.
    assert_eq!(
        run(&["parse-kmsg", "--", "--format"]).command,
        kmsg(InputFormat::Auto, "--format")
    );
    assert_eq!(
        run(&["parse-kmsg", "--", "-"]).command,
        kmsg(InputFormat::Auto, "-")
    );
    // The daemon's flags before it are kept (main ignores them for parse-kmsg).
    let cli = run(&["--config", "/c", "--", "parse-kmsg", "f"]);
    assert_eq!(
        (cli.config, cli.command),
        (Some("/c".into()), kmsg(InputFormat::Auto, "f"))
    );

    assert_eq!(problem(&["parse-kmsg"]), Problem::Missing("FILE"));
    assert_eq!(
        problem(&["parse-kmsg", "f", "g"]),
        Problem::Unexpected("g".into())
    );
    assert_eq!(
        problem(&["parse-kmsg", "-x"]),
        Problem::Unexpected("-x".into())
    );
    assert_eq!(
        problem(&["parse-kmsg", "--format", "kmsg", "--format=dmesg", "f"]),
        Problem::Repeated("--format <FORMAT>".into())
    );
    assert_eq!(
        problem(&["parse-kmsg", "--format=xx", "f"]).to_string(),
        "invalid value 'xx' for '--format <FORMAT>': unknown input format \"xx\": expected \
         auto, kmsg, dmesg or syslog"
    );
    assert_eq!(
        problem(&["parse-kmsg", "--format", "-"]),
        Problem::BadValue {
            flag: "--format <FORMAT>".into(),
            value: "-".into(),
            why: "unknown input format \"-\": expected auto, kmsg, dmesg or syslog".into()
        }
    );
    assert_eq!(
        problem(&["parse-kmsg", "--format"]),
        Problem::MissingValue("--format <FORMAT>".into())
    );

    let help = printed(&["parse-kmsg", "f", "--help"]);
    assert_eq!(
        help,
        "Prints one JSON object per OOM kill found in a kernel log (a file, or - for stdin)\n\
         \n\
         Usage: fleet-agent parse-kmsg [OPTIONS] <FILE>\n\
         \n\
         Arguments:\n  <FILE>  The log file, or - for standard input\n\
         \n\
         Options:\n      --format <FORMAT>  Input form: auto, kmsg (/dev/kmsg records), \
         dmesg, or syslog (also journal text) [default: auto]\n  \
         -h, --help             Print help\n"
    );
    assert_eq!(printed(&["help", "parse-kmsg"]), help);
    assert_eq!(printed(&["parse-kmsg", "-h"]), help);
    assert_eq!(
        run(&["parse-kmsg", "--", "-h"]).command,
        kmsg(InputFormat::Auto, "-h")
    );
}

#[test]
fn release_policies_takes_the_daemons_flags_before_it() {
    let cli = run(&["--config", "/etc/fleet/agent.toml", "release-policies"]);
    assert_eq!(cli.config, Some("/etc/fleet/agent.toml".into()));
    assert_eq!(cli.command, Some(Command::ReleasePolicies));
    let cli = run(&["--collector", "u", "--no-kmsg", "release-policies", "--"]);
    assert!(cli.options.no_kmsg);
    assert_eq!(cli.command, Some(Command::ReleasePolicies));
    assert_eq!(
        problem(&["release-policies", "extra"]),
        Problem::Unexpected("extra".into())
    );
    assert_eq!(
        problem(&["release-policies", "--config", "/c"]),
        Problem::Unexpected("--config".into())
    );
    let help = printed(&["release-policies", "--help"]);
    assert!(help.starts_with(RELEASE_POLICIES_ABOUT), "{help}");
    assert!(help.ends_with(
        "\n\nUsage: fleet-agent release-policies\n\nOptions:\n  -h, --help  Print help\n"
    ));
    assert_eq!(printed(&["help", "release-policies"]), help);
}
