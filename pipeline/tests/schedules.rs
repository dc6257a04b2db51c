//! Schedules: generation, torch's text and CSV forms, the validator and its dry run.

use shardc_pipeline::{Action, ActionKind, CsvFormat, Error, Schedule, ScheduleKind as S};

/// The stage counts each kind is generated for on `p` ranks.
fn stage_counts(kind: S, p: u32) -> Vec<u32> {
    match kind {
        S::GPipe | S::OneFOneB | S::ForwardOnly => vec![p],
        S::Interleaved1F1B | S::LoopedBfs | S::InterleavedZeroBubble => vec![p, 2 * p, 4 * p],
        S::ZbVZeroBubble | S::DualPipeV => vec![2 * p],
    }
}

#[test]
fn every_schedule_passes_the_validator_for_p_2_4_8_and_m_p_2p_4p() {
    let mut checked = 0;
    for kind in S::ALL {
        for p in [2, 4, 8] {
            for m in [p, 2 * p, 4 * p] {
                for stages in stage_counts(kind, p) {
                    match Schedule::generate(kind, stages, p, m) {
                        Ok(s) => {
                            s.validate().unwrap_or_else(|e| {
                                panic!("{kind} p={p} m={m} stages={stages}: {e}")
                            });
                            checked += 1;
                        }
                        // DualPipeV needs m >= 2p: the only refusal in this grid.
                        Err(Error::Unsupported { reason, .. }) => {
                            assert!(
                                kind == S::DualPipeV && m < stages,
                                "{kind} p={p} m={m} stages={stages} refused: {reason}"
                            );
                        }
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }
    }
    // 3 single-stage kinds × 9, 3 looped kinds × 9 × 3 stage counts, ZB-V 9, DualPipeV 6.
    assert_eq!(checked, 123);
}

#[test]
fn action_text_round_trips_in_torch_form() {
    for text in [
        "2F0",
        "1I0",
        "0W3",
        "1B0",
        "3SEND_F1",
        "1RECV_B2",
        "0REDUCE_GRAD",
        "12RECV_F123",
    ] {
        let a: Action = text.parse().unwrap();
        assert_eq!(a.to_string(), text);
    }
    let a: Action = "3SEND_F1".parse().unwrap();
    assert_eq!(
        (a.stage, a.kind, a.microbatch),
        (3, ActionKind::SendF, Some(1))
    );
    for bad in ["F0", "2X0", "2F", "2F0x", "", "99999999999F0"] {
        let e = bad.parse::<Action>().unwrap_err().to_string();
        assert!(
            e.contains("expected [stage][type][micro-batch]"),
            "{bad}: {e}"
        );
    }
}

#[test]
fn dualpipev_matches_torchs_artifact_for_4_ranks_10_microbatches() {
    // torch's test/distributed/pipelining/artifacts/dualpipev_4rank_10mb.csv; its OVERLAP_F_B
    // pairs read as their two sub-actions.
    let torch = Schedule::from_csv(
        include_str!("data/dualpipev_4rank_10mb.csv"),
        CsvFormat::ComputeOnly,
    )
    .unwrap();
    let ours = Schedule::generate(S::DualPipeV, 8, 4, 10).unwrap();
    assert_eq!(ours.compute, torch.compute);
    assert_eq!(ours.stage_to_rank, vec![0, 1, 2, 3, 3, 2, 1, 0]);
}

#[test]
fn gpipe_and_1f1b_lists_read_as_torch_writes_them() {
    let g = Schedule::generate(S::GPipe, 2, 2, 2).unwrap();
    assert_eq!(
        g.to_csv(CsvFormat::ComputeOnly).unwrap(),
        "0F0,0F1,,,,0B0,0B1\r\n,1F0,1F1,1B0,1B1\r\n"
    );
    let s = Schedule::generate(S::OneFOneB, 4, 4, 8).unwrap();
    let row0: Vec<String> = s.compute[0]
        .iter()
        .flatten()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(row0[..6], ["0F0", "0F1", "0F2", "0F3", "0B0", "0F4"]);
    let last: Vec<String> = s.compute[3]
        .iter()
        .flatten()
        .map(|a| a.to_string())
        .collect();
    assert_eq!(last[..4], ["3F0", "3B0", "3F1", "3B1"]);
}

#[test]
fn interleaved_1f1b_is_depth_first_over_rounds_of_p() {
    let s = Schedule::generate(S::Interleaved1F1B, 4, 2, 4).unwrap();
    let row0: Vec<String> = s.compute[0]
        .iter()
        .flatten()
        .map(|a| a.to_string())
        .collect();
    // Warm-up (v−1)·p + 2(p−1−r) = 4 forwards: two micro-batches through stage 0, two through 2.
    assert_eq!(row0[..5], ["0F0", "0F1", "2F0", "2F1", "0F2"]);
    assert_eq!(s.stage_to_rank, vec![0, 1, 0, 1]);
}

#[test]
fn comms_form_pairs_every_send_with_a_receive_and_round_trips_through_csv() {
    for (kind, stages, p, m) in [
        (S::OneFOneB, 4, 4, 8),
        (S::Interleaved1F1B, 8, 4, 8),
        (S::ZbVZeroBubble, 8, 4, 8),
    ] {
        let s = Schedule::generate(kind, stages, p, m).unwrap();
        let comms = s.with_comms().unwrap();
        let sends = comms
            .iter()
            .flatten()
            .filter(|a| matches!(a.kind, ActionKind::SendF | ActionKind::SendB))
            .count();
        let recvs = comms
            .iter()
            .flatten()
            .filter(|a| matches!(a.kind, ActionKind::RecvF | ActionKind::RecvB))
            .count();
        assert_eq!(sends, recvs);
        assert!(sends > 0);
        let text = s.to_csv(CsvFormat::ComputeComms).unwrap();
        assert!(text.contains("SEND_F") && text.contains("REDUCE_GRAD"));
        let back = Schedule::from_csv(&text, CsvFormat::ComputeComms).unwrap();
        assert_eq!(back.stage_to_rank, s.stage_to_rank);
        let only = Schedule::from_csv(
            &s.to_csv(CsvFormat::ComputeOnly).unwrap(),
            CsvFormat::ComputeOnly,
        )
        .unwrap();
        assert_eq!(only.compute, s.compute);
    }
}

#[test]
fn a_receive_that_never_comes_fails_the_dry_run_naming_the_stuck_action() {
    let s = Schedule::generate(S::OneFOneB, 4, 4, 8).unwrap();
    let mut comms = s.with_comms().unwrap();
    let send: Action = "1SEND_F3".parse().unwrap();
    comms[1].retain(|a| *a != send);
    let e = s.validate_comms(&comms).unwrap_err();
    let text = e.to_string();
    assert!(matches!(e, Error::Deadlock { .. }), "{text}");
    assert!(
        text.contains("rank 2 step")
            && text.contains("action 2RECV_F3 waits for 1SEND_F3 on rank 1"),
        "{text}"
    );
    assert!(
        text.contains("2RECV_F3") && text.contains("<-- ERROR HERE"),
        "{text}"
    );
}

#[test]
fn a_backward_before_its_forward_is_named() {
    let mut s = Schedule::generate(S::GPipe, 2, 2, 2).unwrap();
    let row = &mut s.compute[1];
    let f = row
        .iter()
        .position(|a| a.is_some_and(|a| a.to_string() == "1F1"))
        .unwrap();
    let b = row
        .iter()
        .position(|a| a.is_some_and(|a| a.to_string() == "1B1"))
        .unwrap();
    row.swap(f, b);
    let e = s.validate().unwrap_err().to_string();
    assert!(
        e.contains("rank 1") && e.contains("1B1") && e.contains("without first running Forward"),
        "{e}"
    );
}

#[test]
fn a_missing_weight_gradient_is_named() {
    let mut s = Schedule::generate(S::InterleavedZeroBubble, 2, 2, 4).unwrap();
    let w: Action = "0W2".parse().unwrap();
    for row in &mut s.compute {
        row.retain(|a| *a != Some(w));
    }
    let e = s.validate().unwrap_err().to_string();
    assert!(
        e.contains("stage 0, micro-batch 2") && e.contains("I and W"),
        "{e}"
    );
}

#[test]
fn unsupported_combinations_are_refused_with_the_reason() {
    let cases = [
        (
            S::OneFOneB,
            4,
            4,
            2,
            "at least as many micro-batches as stages",
        ),
        (S::GPipe, 8, 4, 8, "one stage per rank"),
        (S::Interleaved1F1B, 6, 4, 8, "multiple of ranks"),
        (
            S::Interleaved1F1B,
            8,
            4,
            9,
            "multiple of the number of rounds",
        ),
        (
            S::ZbVZeroBubble,
            4,
            4,
            8,
            "exactly two stages on every rank",
        ),
        (
            S::DualPipeV,
            8,
            4,
            6,
            "at least as many micro-batches as stages",
        ),
        (S::GPipe, 0, 0, 1, "at least 1"),
        (S::GPipe, 5000, 5000, 1, "at most 4096 pipeline ranks"),
        (
            S::ZbVZeroBubble,
            4,
            3000,
            1,
            "exactly two stages on every rank",
        ),
    ];
    for (kind, stages, p, m, why) in cases {
        let e = Schedule::generate(kind, stages, p, m)
            .unwrap_err()
            .to_string();
        assert!(e.contains(why) && e.contains(kind.name()), "{e}");
    }
}

#[test]
fn schedule_names_parse_as_torch_spells_them() {
    for kind in S::ALL {
        assert_eq!(kind.name().to_lowercase().parse::<S>().unwrap(), kind);
    }
    assert_eq!("zb-h1".parse::<S>().unwrap(), S::InterleavedZeroBubble);
    assert_eq!("ZBV".parse::<S>().unwrap(), S::ZbVZeroBubble);
    assert!("pipedream"
        .parse::<S>()
        .unwrap_err()
        .to_string()
        .contains("GPipe, 1F1B"));
}

#[test]
fn bad_csv_names_row_and_column() {
    let e = Schedule::from_csv("0F0,0B0\n1F0,1Q0\n", CsvFormat::ComputeOnly)
        .unwrap_err()
        .to_string();
    assert!(e.contains("row 1") && e.contains("column 1"), "{e}");
    let e = Schedule::from_csv("0F0,1F0\n1B0\n", CsvFormat::ComputeOnly)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("stage 1 is assigned to both rank 0 and rank 1"),
        "{e}"
    );
}
