//! A provider's HTTP server over a real job directory (a real repops run), checked by the
//! validator's path: fetch the segment's leaves and checkpoint, verify them against the
//! committed root, replay with repops. Honest work matches; each cheating behaviour is found.

use std::net::SocketAddr;

use poi_agents::NodeClient;
use poi_agents::behaviour::ProviderBehaviour;
use poi_agents::infer::LoadedModel;
use poi_agents::provider::{server, work};
use poi_agents::segment::{self, SegmentOutcome, SegmentRef};
use poi_agents::store::{AgentDir, JobRecord};
use poi_agents::wire::{OutputAnswer, output_digest, request_digest};
use poi_repops::commit::{Digest, merkle_proof, merkle_root, read_checkpoint};
use poi_repops::train::checkpoint_path;
use serde_json::json;

use crate::{K, STEPS, init_tracing, tiny_spec};

const JOB: u64 = 5;

struct Served {
    _tmp: tempfile::TempDir,
    server: server::ServerHandle,
    record: JobRecord,
    dir: AgentDir,
}

impl Served {
    fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    fn digests(&self) -> (&[Digest], Digest) {
        match &self.record {
            JobRecord::Training { digests, root, .. } => (digests, *root),
            JobRecord::Inference { .. } => panic!("a training record"),
        }
    }
}

fn loopback() -> SocketAddr {
    "127.0.0.1:0".parse().expect("address")
}

/// Trains the tiny job as `behaviour` says and serves it.
fn serve(behaviour: ProviderBehaviour) -> Served {
    init_tracing();
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = AgentDir::new(tmp.path(), "provider");
    let record = work::train(JOB, &tiny_spec(), &dir.train_dir(JOB), behaviour, 1).expect("train");
    dir.write_record(&record).expect("record");
    let server = server::start(loopback(), dir.clone(), behaviour).expect("serve");
    Served {
        _tmp: tmp,
        server,
        record,
        dir,
    }
}

/// What the validator's path finds for segment `j`.
fn check(served: &Served, j: u64) -> SegmentOutcome {
    let http = NodeClient::new("http://127.0.0.1:1");
    let endpoint = served.endpoint();
    let (_, root) = served.digests();
    let seg = SegmentRef {
        endpoint: &endpoint,
        job: JOB,
        start: j * K,
        end: (j * K + K).min(STEPS),
        steps: STEPS,
        root,
    };
    segment::check_segment(&http, &tiny_spec(), &seg, 1).expect("check")
}

#[test]
fn honest_segments_match_and_the_final_proof_verifies_in_core() {
    let served = serve(ProviderBehaviour::Honest);
    let (digests, root) = served.digests();
    assert_eq!(digests.len() as u64, STEPS + 1);
    for j in 0..STEPS / K {
        let end = (j * K + K) as usize;
        assert_eq!(
            check(&served, j),
            SegmentOutcome::Match(digests[end]),
            "segment {j}"
        );
    }
    // Core's own copy of the Merkle hashing accepts repops' proof of the final leaf.
    let proof = merkle_proof(digests, STEPS).expect("proof");
    let siblings: Vec<[u8; 32]> = proof.siblings.iter().map(|d| d.0).collect();
    poi_core::poi::merkle::verify(
        STEPS,
        STEPS + 1,
        &siblings,
        &digests[STEPS as usize].0,
        &root.0,
    )
    .expect("core verifies repops' proof");
}

#[test]
fn faked_segments_mismatch_at_their_first_step() {
    let honest = serve(ProviderBehaviour::Honest);
    let fake = serve(ProviderBehaviour::FakeSegments { bps: 10_000 });
    let (true_digests, _) = honest.digests();
    for j in 0..STEPS / K {
        let step = j * K + 1;
        assert_eq!(
            check(&fake, j),
            SegmentOutcome::Mismatch {
                step,
                computed: true_digests[step as usize]
            },
            "segment {j}"
        );
    }
    // The final leaf is the true one, so the chain's commit check still passes.
    let (fake_digests, _) = fake.digests();
    assert_eq!(fake_digests.last(), true_digests.last());
}

#[test]
fn skipped_steps_mismatch_at_the_first_skipped_step() {
    let served = serve(ProviderBehaviour::SkipSteps);
    match check(&served, 0) {
        SegmentOutcome::Mismatch { step, .. } => assert_eq!(step, 2),
        other => panic!("expected a mismatch, got {other:?}"),
    }
    assert!(matches!(check(&served, 2), SegmentOutcome::Mismatch { .. }));
}

#[test]
fn a_wrong_or_withheld_checkpoint_is_unavailable() {
    for behaviour in [
        ProviderBehaviour::WrongCheckpoint,
        ProviderBehaviour::WithholdCheckpoint,
    ] {
        let served = serve(behaviour);
        for j in [0, 1] {
            match check(&served, j) {
                SegmentOutcome::Unavailable(why) => {
                    assert!(why.contains("checkpoint"), "{behaviour}: {why}")
                }
                other => panic!("{behaviour}: expected unavailable, got {other:?}"),
            }
        }
    }
}

#[test]
fn the_server_refuses_bad_ranges_and_unknown_jobs_with_json_errors() {
    let served = serve(ProviderBehaviour::Honest);
    let http = NodeClient::new("http://127.0.0.1:1");
    let base = served.endpoint();
    for (path, status) in [
        (format!("/v1/jobs/{JOB}/digests?from=5&to=2"), 400),
        (format!("/v1/jobs/{JOB}/digests?from=0&to=13"), 400),
        (format!("/v1/jobs/{JOB}/digests?from=x&to=1"), 400),
        ("/v1/jobs/99/digests?from=0&to=1".to_owned(), 404),
        (format!("/v1/jobs/{JOB}/checkpoints/13"), 404),
        (format!("/v1/jobs/{JOB}/outputs/0"), 404),
    ] {
        match http.get_url(&format!("{base}{path}")) {
            Err(poi_agents::AgentError::Rejected { status: got, .. }) => {
                assert_eq!(got, status, "{path}")
            }
            other => panic!("{path}: {other:?}"),
        }
    }
}

/// Iris-sized feature rows (4 standardised features) as JSON requests.
fn requests() -> Vec<Vec<u8>> {
    (0..4)
        .map(|i| {
            let x = [0.1 * i as f32, -0.5, 0.3, 1.0 - 0.2 * i as f32];
            json!({ "features": x }).to_string().into_bytes()
        })
        .chain([b"not json".to_vec()])
        .collect()
}

#[test]
fn inference_outputs_are_served_with_proofs_and_a_wrong_output_differs() {
    let trained = serve(ProviderBehaviour::Honest);
    let train_dir = trained.dir.train_dir(JOB);
    let ckpt = read_checkpoint(&checkpoint_path(&train_dir, STEPS), None).expect("final ckpt");
    let mut model = LoadedModel::new(&tiny_spec(), &ckpt).expect("model");
    let reqs = requests();
    let honest = work::infer(7, &mut model, &reqs, ProviderBehaviour::Honest);
    let wrong = work::infer(7, &mut model, &reqs, ProviderBehaviour::WrongInference);
    let (
        JobRecord::Inference {
            leaves: h, outputs, ..
        },
        JobRecord::Inference { leaves: w, .. },
    ) = (&honest, &wrong)
    else {
        panic!("inference records");
    };
    assert!(
        h.iter().zip(w).all(|(a, b)| a != b),
        "every wrong output differs"
    );
    // Deterministic: a second run gives the same leaves; the bad request has an error output.
    let again = work::infer(7, &mut model, &reqs, ProviderBehaviour::Honest);
    assert_eq!(again, honest);
    assert!(
        String::from_utf8(hex::decode(&outputs[4]).unwrap())
            .unwrap()
            .starts_with("error: ")
    );

    // Served: request and output proofs verify under the input and output roots.
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = AgentDir::new(tmp.path(), "inferer");
    dir.write_record(&honest).expect("record");
    let server = server::start(loopback(), dir, ProviderBehaviour::Honest).expect("serve");
    let http = NodeClient::new("http://127.0.0.1:1");
    let url = format!("http://{}/v1/jobs/7/outputs/2", server.addr());
    let answer: OutputAnswer = serde_json::from_value(http.get_url(&url).expect("output")).unwrap();
    let input_root = work::input_root(&reqs);
    let request = hex::decode(&answer.request).unwrap();
    assert_eq!(request, reqs[2]);
    answer
        .request_proof
        .verify(&request_digest(&request), &input_root)
        .expect("request proof");
    let output = hex::decode(&answer.output).unwrap();
    assert_eq!(
        answer.digest,
        output_digest(&model.params_digest(), &request, &output)
    );
    answer
        .proof
        .verify(&answer.digest, &merkle_root(h))
        .expect("output proof");
    assert_eq!(
        model.run(&request),
        output,
        "re-running reproduces the served output"
    );
}

#[test]
fn requests_are_posted_and_read_back_until_the_job_is_computed() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let dir = AgentDir::new(tmp.path(), "p");
    let server = server::start(loopback(), dir.clone(), ProviderBehaviour::Honest).expect("serve");
    let http = NodeClient::new("http://127.0.0.1:1");
    let url = format!("http://{}/v1/jobs/3/requests", server.addr());
    let body = json!({ "requests": [hex::encode(b"{\"features\":[1,2,3,4]}")] });
    http.post_url(&url, &body).expect("posted");
    assert_eq!(
        http.get_url(&url).expect("read back")["requests"],
        body["requests"]
    );
    let bad = json!({ "requests": ["zz"] });
    assert!(matches!(
        http.post_url(&url, &bad),
        Err(poi_agents::AgentError::Rejected { status: 400, .. })
    ));
}
