//! Micro-benchmarks of the token hot paths: signing and verifying access
//! tokens, minting and verifying auth tokens. `cargo bench -p app --features ssr`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};

use app::domain::credentials::signing::SigningKeys;
use app::domain::credentials::tokens::{self, AccessClaims};

fn tokens(c: &mut Criterion) {
    let keys = SigningKeys::from_root(&[42u8; 32]);
    let claims = AccessClaims {
        sid: app::domain::ids::random_id(),
        uid: app::domain::ids::random_id(),
        user_id: "alice".into(),
        device_id: "phone-1".into(),
        iat: 1_700_000_000_000,
        exp: 1_702_592_000_000,
    };
    let access = tokens::sign_access(&keys, &claims);
    let auth = tokens::mint_auth(&keys, "alice", 1_700_000_600_000);

    c.bench_function("access token: sign", |b| {
        b.iter(|| tokens::sign_access(&keys, black_box(&claims)))
    });
    c.bench_function("access token: verify", |b| {
        b.iter(|| tokens::verify_access(&keys, black_box(&access)).expect("valid"))
    });
    c.bench_function("auth token: mint", |b| {
        b.iter(|| tokens::mint_auth(&keys, black_box("alice"), 1_700_000_600_000))
    });
    c.bench_function("auth token: verify", |b| {
        b.iter(|| tokens::verify_auth(&keys, black_box("alice"), black_box(&auth)).expect("valid"))
    });
}

criterion_group!(benches, tokens);
criterion_main!(benches);
