use super::*;
use crate::metrics::{ErrorKind, Event};

fn steps() -> Vec<StepInfo> {
    let info = |id, kind: &str, name: &str| StepInfo {
        id,
        scenario: "s".into(),
        kind: kind.into(),
        name: name.into(),
    };
    vec![
        info(0, "GET", "/health"),
        info(1, "receive", "frame"),
        info(2, "group", "session"),
    ]
}

#[test]
fn listen_values_cover_on_off_and_addresses() {
    assert_eq!(
        parse_listen("1"),
        Ok(Listen(Some(DEFAULT_ADDR.parse().expect("addr"))))
    );
    assert_eq!(parse_listen("off"), Ok(Listen(None)));
    assert_eq!(parse_listen(""), Ok(Listen(None)));
    assert_eq!(
        parse_listen(":9000"),
        Ok(Listen(Some("0.0.0.0:9000".parse().expect("addr"))))
    );
    assert!(parse_listen("plan.kdl").is_err());
}

#[test]
fn histograms_rebucket_the_hdr_counts_and_groups_stay_apart() {
    let mut s = Snapshot::default();
    for us in [500, 2_000, 2_000, 70_000_000] {
        s.record(Event::new(0, us).with_status(200));
    }
    s.record(Event::new(0, 3_000).with_error(ErrorKind::Connect, "refused"));
    s.record(Event::new(1, 10).with_error(ErrorKind::WsTimeout, "1 of 5"));
    s.record(Event::new(1, 10));
    s.record(Event::new(2, 1_000_000));
    let e = Exporter::new("p", "smoke");
    e.update(&steps(), &s, 3, vec![]);
    let text = e.encode(false).expect("encode");
    let has = |line: &str| text.lines().any(|l| l == line);
    let base = "scenario=\"s\",step=\"/health\",method=\"GET\",protocol=\"http\"";
    assert!(
        has(&format!(
            "loadplan_request_duration_seconds_bucket{{{base},le=\"0.001\"}} 1"
        )),
        "{text}"
    );
    assert!(
        has(&format!(
            "loadplan_request_duration_seconds_bucket{{{base},le=\"0.0025\"}} 3"
        )),
        "{text}"
    );
    assert!(
        has(&format!(
            "loadplan_request_duration_seconds_bucket{{{base},le=\"60\"}} 4"
        )),
        "{text}"
    );
    assert!(
        has(&format!(
            "loadplan_request_duration_seconds_bucket{{{base},le=\"+Inf\"}} 5"
        )),
        "{text}"
    );
    assert!(
        has(&format!(
            "loadplan_requests_total{{{base},status_class=\"2xx\"}} 4"
        )),
        "{text}"
    );
    assert!(
        has(&format!(
            "loadplan_requests_total{{{base},status_class=\"none\"}} 1"
        )),
        "{text}"
    );
    assert!(
        has(&format!(
            "loadplan_request_failures_total{{{base},error_kind=\"connect\"}} 1"
        )),
        "{text}"
    );
    assert!(
        has(
            "loadplan_ws_messages_total{scenario=\"s\",step=\"frame\",method=\"receive\",protocol=\"ws\",direction=\"received\"} 1"
        ),
        "{text}"
    );
    assert!(
        has(
            "loadplan_transactions_total{scenario=\"s\",step=\"session\",method=\"group\",protocol=\"group\"} 1"
        ),
        "{text}"
    );
    assert!(
        !text.contains("method=\"group\",protocol=\"group\",status_class"),
        "{text}"
    );
    assert!(has("loadplan_users 3"), "{text}");
    let om = e.encode(true).expect("openmetrics");
    assert!(om.ends_with("# EOF\n"));
}

#[test]
fn every_counter_is_exported_at_zero_before_the_first_event() {
    let e = Exporter::new("p", "smoke");
    e.update(&steps(), &Snapshot::default(), 0, vec![]);
    let text = e.encode(false).expect("encode");
    let has = |line: &str| text.lines().any(|l| l == line);
    let base = "scenario=\"s\",step=\"/health\",method=\"GET\",protocol=\"http\"";
    for kind in ErrorKind::ALL {
        let line = format!(
            "loadplan_request_failures_total{{{base},error_kind=\"{}\"}} 0",
            kind.as_str()
        );
        assert!(has(&line), "{line}\n{text}");
    }
    assert!(
        has(&format!(
            "loadplan_requests_total{{{base},status_class=\"none\"}} 0"
        )),
        "{text}"
    );
    assert!(
        has(&format!(
            "loadplan_request_duration_seconds_count{{{base}}} 0"
        )),
        "{text}"
    );
}

#[test]
fn phases_and_decoded_bytes_are_exported_for_http_rows_only() {
    let mut s = Snapshot::default();
    let phased = |connect: Option<u64>| Event {
        bytes_in: 100,
        bytes_decoded: 400,
        phases: Some(crate::metrics::Phases {
            dns_us: None,
            connect_us: connect,
            wait_us: 200_000,
            receive_us: 50,
        }),
        ..Event::new(0, 201_000).with_status(200)
    };
    s.record(phased(Some(300)));
    s.record(phased(None));
    s.record(Event::new(1, 10));
    let e = Exporter::new("p", "smoke");
    e.update(&steps(), &s, 1, vec![]);
    let text = e.encode(false).expect("encode");
    let has = |line: &str| text.lines().any(|l| l == line);
    let base = "scenario=\"s\",step=\"/health\",method=\"GET\",protocol=\"http\"";
    for (phase, le, n) in [
        ("wait", "0.1", 0),
        ("wait", "0.25", 2),
        ("connect", "0.0005", 1),
        ("connect", "+Inf", 1),
        ("receive", "0.0001", 2),
        ("dns", "+Inf", 0),
    ] {
        let line = format!(
            "loadplan_request_phase_duration_seconds_bucket{{{base},phase=\"{phase}\",le=\"{le}\"}} {n}"
        );
        assert!(has(&line), "{line}\n{text}");
    }
    assert!(
        has(&format!("loadplan_data_decoded_bytes_total{{{base}}} 800")),
        "{text}"
    );
    assert!(
        has(&format!("loadplan_data_received_bytes_total{{{base}}} 200")),
        "{text}"
    );
    assert!(!text.contains("step=\"frame\",method=\"receive\",protocol=\"ws\",phase"));
}

#[test]
fn sub_millisecond_requests_spread_over_buckets_from_100_microseconds() {
    let mut s = Snapshot::default();
    for us in [80, 200, 400, 900] {
        s.record(Event::new(0, us).with_status(200));
    }
    let e = Exporter::new("p", "smoke");
    e.update(&steps(), &s, 1, vec![]);
    let text = e.encode(false).expect("encode");
    let base = "scenario=\"s\",step=\"/health\",method=\"GET\",protocol=\"http\"";
    for (le, n) in [("0.0001", 1), ("0.00025", 2), ("0.0005", 3), ("0.001", 4)] {
        let line = format!("loadplan_request_duration_seconds_bucket{{{base},le=\"{le}\"}} {n}");
        assert!(text.lines().any(|l| l == line), "{line}\n{text}");
    }
}

#[test]
fn http_and_websocket_rows_carry_their_protocol() {
    let mut s = Snapshot::default();
    s.record(Event::new(0, 100).with_status(200));
    s.record(Event::new(1, 100));
    let e = Exporter::new("p", "smoke");
    e.update(&steps(), &s, 1, vec![]);
    let text = e.encode(false).expect("encode");
    assert!(
        text.contains("method=\"GET\",protocol=\"http\",status_class=\"2xx\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("method=\"receive\",protocol=\"ws\",status_class=\"none\"} 1"),
        "{text}"
    );
}
