//! Plain data: keys and signatures made once with ssh-keygen and gpg
//! (`testdata/README` says how), over `testdata/payload`.

use super::*;

const ALICE: &str = include_str!("testdata/alice.pub");
const MALLORY: &str = include_str!("testdata/mallory.pub");
const ALICE_GIT: &str = include_str!("testdata/alice.git.sig");
const ALICE_FILE: &str = include_str!("testdata/alice.file.sig");
const MALLORY_GIT: &str = include_str!("testdata/mallory.git.sig");
const PAYLOAD: &str = include_str!("testdata/payload");
const PGP_KEY: &str = include_str!("testdata/pgp.pub");
const PGP_SIG: &str = include_str!("testdata/pgp.sig");
const OTHER_KEY: &str = include_str!("testdata/other.pub");
const OTHER_SIG: &str = include_str!("testdata/other.sig");
const REVOKED_KEY: &str = include_str!("testdata/revoked.pub");
const REVOKED_SIG: &str = include_str!("testdata/revoked.sig");
const EXPIRED_KEY: &str = include_str!("testdata/expired.pub");
const EXPIRED_EARLY: &str = include_str!("testdata/expired.early.sig");
const EXPIRED_VALID: &str = include_str!("testdata/expired.valid.sig");
const EXPIRED_LATE: &str = include_str!("testdata/expired.late.sig");
const EXPIRED_DAY: &str = include_str!("testdata/expired.day.sig");
const SUBKEY_KEY: &str = include_str!("testdata/subkey.pub");
const SUBKEY_SIG: &str = include_str!("testdata/subkey.sig");
/// The payload's committer time, 2023-11-14T22:13:20Z.
const COMMITTED: i64 = 1_700_000_000;
/// 2020-07-01T00:00:00Z: `expired.pub` is valid (2020-01-01 to 2021-01-01).
const MID_2020: i64 = 1_593_561_600;

fn commit(signature: Option<&str>) -> SignedCommit {
    SignedCommit {
        commit: "c0ffee".into(),
        committer_email: "alice@example.com".into(),
        committer_time: COMMITTED,
        signature: signature.map(|s| s.as_bytes().to_vec()),
        payload: PAYLOAD.as_bytes().to_vec(),
    }
}

fn ssh(lines: &str) -> Signers {
    Signers::parse(lines).expect("an allowed-signers file")
}

fn reason(signers: &Signers, commit: &SignedCommit) -> Reason {
    signers.check(commit).expect_err("refused").reason
}

fn fingerprint(public: &str) -> String {
    ssh_key::PublicKey::from_openssh(public.trim())
        .expect("key")
        .fingerprint(ssh_key::HashAlg::Sha256)
        .to_string()
}

#[test]
fn a_signature_by_a_key_listed_for_the_committer_is_accepted() {
    let signers = ssh(&format!("# team\n\nalice@example.com {ALICE}"));
    assert_eq!(signers.check(&commit(Some(ALICE_GIT))), Ok(()));
    // Patterns and namespaces as ssh-keygen reads them.
    let signers = ssh(&format!(
        "*@example.com,!bob@example.com namespaces=\"file,git\",valid-after=20230101 {ALICE}"
    ));
    assert_eq!(signers.check(&commit(Some(ALICE_GIT))), Ok(()));
}

#[test]
fn unsigned_and_unlisted_keys_are_refused_naming_the_key() {
    let signers = ssh(&format!("alice@example.com {ALICE}"));
    let refusal = signers.check(&commit(None)).expect_err("refused");
    assert_eq!(refusal.reason, Reason::Unsigned);
    assert!(refusal.to_string().contains("commit c0ffee"), "{refusal}");
    let unlisted = reason(&signers, &commit(Some(MALLORY_GIT)));
    assert_eq!(
        unlisted,
        Reason::UnlistedKey {
            fingerprint: fingerprint(MALLORY)
        }
    );
    assert!(unlisted.to_string().contains("SHA256:"), "{unlisted}");
}

#[test]
fn the_key_must_be_listed_for_the_committers_email() {
    let signers = ssh(&format!("bob@example.com,alice@* {ALICE}"));
    let mut by_bob = commit(Some(ALICE_GIT));
    by_bob.committer_email = "alice@example.com".into();
    assert_eq!(signers.check(&by_bob), Ok(()));
    let signers = ssh(&format!("bob@example.com {ALICE}"));
    assert_eq!(
        reason(&signers, &commit(Some(ALICE_GIT))),
        Reason::Principal {
            fingerprint: fingerprint(ALICE),
            email: "alice@example.com".into()
        }
    );
    // A negated pattern wins over a wildcard.
    let signers = ssh(&format!("*,!alice@example.com {ALICE}"));
    assert!(matches!(
        reason(&signers, &commit(Some(ALICE_GIT))),
        Reason::Principal { .. }
    ));
}

#[test]
fn namespaces_validity_and_tampering_are_refused() {
    let signers = ssh(&format!("alice@example.com {ALICE}"));
    assert_eq!(
        reason(&signers, &commit(Some(ALICE_FILE))),
        Reason::Namespace("file".into())
    );
    let only_file = ssh(&format!("alice@example.com namespaces=\"file\" {ALICE}"));
    assert!(matches!(
        reason(&only_file, &commit(Some(ALICE_GIT))),
        Reason::NamespaceNotAllowed { line: 1, .. }
    ));
    let expired = ssh(&format!("alice@example.com valid-before=20230101Z {ALICE}"));
    let why = reason(&expired, &commit(Some(ALICE_GIT)));
    assert!(
        why.to_string().contains(
            "until 2023-01-01T00:00:00Z, and the commit was made at 2023-11-14T22:13:20Z"
        ),
        "{why}"
    );
    let early = ssh(&format!(
        "alice@example.com valid-after=202312010000Z {ALICE}"
    ));
    assert!(matches!(
        reason(&early, &commit(Some(ALICE_GIT))),
        Reason::OutsideValidity { .. }
    ));
    // Another line for the same key and principal may allow it.
    let two = ssh(&format!(
        "alice@example.com valid-before=20230101Z {ALICE}alice@example.com {ALICE}"
    ));
    assert_eq!(two.check(&commit(Some(ALICE_GIT))), Ok(()));
    let mut tampered = commit(Some(ALICE_GIT));
    tampered.payload = PAYLOAD.replace("msg", "gsm").into_bytes();
    assert!(matches!(
        reason(&signers, &tampered),
        Reason::BadSignature { .. }
    ));
}

#[test]
fn malformed_and_foreign_signatures_are_refused() {
    let signers = ssh(&format!("alice@example.com {ALICE}"));
    let garbled = ALICE_GIT.replace("U1NIU0lH", "AAAAAAAA");
    assert!(matches!(
        reason(&signers, &commit(Some(&garbled))),
        Reason::Malformed { kind: "SSH", .. }
    ));
    assert!(matches!(
        reason(&signers, &commit(Some(PGP_SIG))),
        Reason::WrongKind { .. }
    ));
    assert_eq!(
        reason(&signers, &commit(Some("-----BEGIN SIGNED MESSAGE-----\n"))),
        Reason::UnknownFormat
    );
}

#[test]
fn openpgp_signatures_verify_against_the_keyring() {
    let keyring = Signers::parse(PGP_KEY).expect("a keyring");
    assert!(matches!(keyring, Signers::OpenPgp(_)));
    assert_eq!(keyring.check(&commit(Some(PGP_SIG))), Ok(()));
    let why = reason(&keyring, &commit(Some(OTHER_SIG)));
    assert!(matches!(why, Reason::UnlistedPgpKey { .. }), "{why}");
    let mut tampered = commit(Some(PGP_SIG));
    tampered.payload.push(b'\n');
    assert!(matches!(
        reason(&keyring, &tampered),
        Reason::BadSignature { .. }
    ));
    assert!(matches!(
        reason(&keyring, &commit(Some(ALICE_GIT))),
        Reason::WrongKind { .. }
    ));
    // Two keys in one file: either signs.
    let both = Signers::parse(&format!("{PGP_KEY}\n{OTHER_KEY}")).expect("a keyring");
    assert_eq!(both.check(&commit(Some(OTHER_SIG))), Ok(()));
}

#[test]
fn broken_files_are_refused_naming_the_line() {
    let problem = |text: &str| Signers::parse(text).expect_err("refused");
    assert_eq!(problem("# nothing\n\n"), ParseError::Empty);
    assert_eq!(problem(""), ParseError::Empty);
    let at = |text: &str| match problem(text) {
        ParseError::Line { line, problem } => (line, problem),
        other => panic!("{other:?}"),
    };
    assert_eq!(at("\nalice@example.com\n"), (2, LineProblem::NoKey));
    assert_eq!(
        at(&format!("a cert-authority {ALICE}")),
        (1, LineProblem::CertAuthority)
    );
    assert_eq!(
        at(&format!("a colour=\"red\" {ALICE}")),
        (1, LineProblem::UnknownOption("colour".into()))
    );
    assert!(matches!(
        at(&format!("a valid-after=2023 {ALICE}")),
        (1, LineProblem::BadTime { .. })
    ));
    assert!(matches!(
        at(&format!("a valid-after=20231345 {ALICE}")),
        (1, LineProblem::BadTime { .. })
    ));
    assert!(matches!(
        at("a ssh-ed25519 AAAAnotbase64"),
        (1, LineProblem::BadKey(_))
    ));
    assert_eq!(
        at("a namespaces=\"git ssh-ed25519 AAAA"),
        (1, LineProblem::Unterminated)
    );
    assert!(matches!(
        problem(
            "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\ngarbage\n-----END PGP PUBLIC KEY BLOCK-----\n"
        ),
        ParseError::Keyring(_)
    ));
}

#[test]
fn times_are_read_as_ssh_keygen_reads_them() {
    assert_eq!(parse_time("valid-after", "20231114Z"), Ok(1_699_920_000));
    assert_eq!(
        parse_time("valid-after", "202311142213Z"),
        Ok(1_699_999_980)
    );
    assert_eq!(parse_time("valid-after", "20231114221320Z"), Ok(COMMITTED));
    for bad in ["2023111", "2023-11-14", "20231114T", "202311142", ""] {
        assert!(parse_time("valid-after", bad).is_err(), "{bad}");
    }
}

#[test]
fn patterns_follow_openssh() {
    assert!(match_pattern("alice@example.com", "*@example.com"));
    assert!(match_pattern("alice@example.com", "al?ce@*"));
    assert!(match_pattern("a", "*"));
    assert!(!match_pattern("alice@example.com", "*@example.org"));
    assert!(!match_pattern("Alice@example.com", "alice@example.com"));
    assert!(match_pattern("aXbXc", "a*b*c"));
    assert!(!match_pattern("ab", "a*b*c"));
    assert!(match_pattern_list("x@y", "a@b,x@*"));
    assert!(!match_pattern_list("x@y", "*,!x@y"));
    assert!(!match_pattern_list("x@y", "!a@b"));
}

#[test]
fn the_file_is_bounded_and_named() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("signers");
    let load = |content: &[u8]| {
        std::fs::write(&path, content).expect("write");
        Signers::load(&path).map(|_| ()).map_err(|e| e.to_string())
    };
    assert_eq!(load(format!("a {ALICE}").as_bytes()), Ok(()));
    let shown = path.display().to_string();
    let big = format!("# {}\n", "x".repeat(MAX_FILE_BYTES as usize));
    assert_eq!(
        load(big.as_bytes()),
        Err(format!(
            "the --verify-signatures file {shown} is larger than 1 MiB"
        ))
    );
    assert_eq!(
        load(b"\xff\xfe"),
        Err(format!(
            "the --verify-signatures file {shown} is not text (UTF-8)"
        ))
    );
    assert_eq!(
        load(b"a\n"),
        Err(format!("the --verify-signatures file {shown}: line 1: no key after the principals (expected `principals [options] keytype base64-key`)"))
    );
    let missing = dir.path().join("missing");
    let err = Signers::load(&missing).expect_err("missing");
    assert!(matches!(err, LoadError::Read { .. }), "{err}");
}

#[test]
fn rsa_and_ecdsa_keys_verify_too() {
    for (key, signature) in [
        (
            include_str!("testdata/rsa.pub"),
            include_str!("testdata/rsa.git.sig"),
        ),
        (
            include_str!("testdata/ecdsa.pub"),
            include_str!("testdata/ecdsa.git.sig"),
        ),
    ] {
        let signers = ssh(&format!("alice@example.com {key}"));
        assert_eq!(signers.check(&commit(Some(signature))), Ok(()), "{key}");
        let mut tampered = commit(Some(signature));
        tampered.payload.push(b'\n');
        assert!(
            matches!(reason(&signers, &tampered), Reason::BadSignature { .. }),
            "{key}"
        );
    }
}

fn keyring(text: &str) -> Vec<SignedPublicKey> {
    match Signers::parse(text).expect("a keyring") {
        Signers::OpenPgp(keys) => keys,
        Signers::Ssh(_) => panic!("not a keyring"),
    }
}

fn pgp_reason(keys: &[SignedPublicKey], signature: &str, now: i64) -> Option<Reason> {
    let signers = Signers::OpenPgp(keys.to_vec());
    signers
        .check_at(&commit(Some(signature)), now)
        .err()
        .map(|refusal| refusal.reason)
}

#[test]
fn a_revoked_openpgp_key_is_refused_naming_it() {
    let mut keys = keyring(REVOKED_KEY);
    let fingerprint = format!("{:X}", keys[0].primary_key.fingerprint());
    assert_eq!(fingerprint, "0C94EEFA2DA27966193D24839D5217FFFF3EF2E2");
    let why = pgp_reason(&keys, REVOKED_SIG, COMMITTED).expect("refused");
    assert_eq!(
        why,
        Reason::KeyRevoked {
            fingerprint: fingerprint.clone(),
            reason: String::new()
        }
    );
    assert_eq!(
        why.to_string(),
        format!("it is signed by the OpenPGP key {fingerprint}, which is revoked")
    );
    // The signature was made before the revocation, and is good: the
    // revocation alone refuses it.
    keys[0].details.revocation_signatures.clear();
    assert_eq!(pgp_reason(&keys, REVOKED_SIG, COMMITTED), None);
}

#[test]
fn a_revoked_signing_subkey_is_refused_naming_it() {
    let mut keys = keyring(SUBKEY_KEY);
    let subkey = format!("{:X}", keys[0].public_subkeys[0].key.fingerprint());
    assert_eq!(subkey, "E212A479FF49743A77FC36AB86FE12D86790EE89");
    assert!(
        keys[0].details.revocation_signatures.is_empty(),
        "the primary is fine"
    );
    assert_eq!(
        pgp_reason(&keys, SUBKEY_SIG, COMMITTED),
        Some(Reason::KeyRevoked {
            fingerprint: subkey,
            reason: String::new()
        })
    );
    keys[0].public_subkeys[0]
        .signatures
        .retain(|s| s.typ() != Some(SignatureType::SubkeyRevocation));
    assert_eq!(pgp_reason(&keys, SUBKEY_SIG, COMMITTED), None);
}

#[test]
fn an_expired_openpgp_key_is_refused_when_it_signed_and_since() {
    // Made 2020-01-01 with no expiry, then given one (2021-01-01) by a
    // newer self-signature: the newer one counts.
    let keys = keyring(EXPIRED_KEY);
    let fingerprint = "914E6049B31440AD7D0A35A7DA06420DF64353F6".to_string();
    assert_eq!(
        format!("{:X}", keys[0].primary_key.fingerprint()),
        fingerprint
    );
    let expired = Reason::KeyExpired {
        fingerprint: fingerprint.clone(),
        at: "2021-01-01T00:00:00Z".into(),
    };
    // Signed 2020-06-01, while valid: accepted while the key is valid...
    assert_eq!(pgp_reason(&keys, EXPIRED_VALID, MID_2020), None);
    // ...refused once it has expired, as git does.
    assert_eq!(
        pgp_reason(&keys, EXPIRED_VALID, COMMITTED),
        Some(expired.clone())
    );
    // Signed 2021-06-01, after the expiry: refused whatever the clock says.
    assert_eq!(
        pgp_reason(&keys, EXPIRED_LATE, MID_2020),
        Some(expired.clone())
    );
    assert_eq!(
        expired.to_string(),
        format!(
            "it is signed by the OpenPGP key {fingerprint}, which expired at 2021-01-01T00:00:00Z"
        )
    );
    // Signed 2020-06-01 to expire a day later.
    assert_eq!(
        pgp_reason(&keys, EXPIRED_DAY, MID_2020),
        Some(Reason::SignatureExpired("2020-06-02T00:00:00Z".into()))
    );
    // An hour after it was made, it holds.
    assert_eq!(pgp_reason(&keys, EXPIRED_DAY, 1_590_969_600 + 3_600), None);
    // Signed 2019-06-01, before the key was made.
    let early = pgp_reason(&keys, EXPIRED_EARLY, MID_2020).expect("refused");
    assert_eq!(
        early.to_string(),
        format!("its signature is dated 2019-06-01T00:00:00Z, before the OpenPGP key {fingerprint} was made (2020-01-01T00:00:00Z)")
    );
}

#[test]
fn check_judges_openpgp_expiry_by_the_clock() {
    let keys = Signers::parse(EXPIRED_KEY).expect("a keyring");
    let why = keys
        .check(&commit(Some(EXPIRED_VALID)))
        .expect_err("expired since")
        .reason;
    assert!(matches!(why, Reason::KeyExpired { .. }), "{why}");
}
