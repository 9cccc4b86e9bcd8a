//! Every ```rust block of docs/sdk-rust.md, compiled as part of this crate (`cargo test` builds
//! it, and runs the tests the examples contain). build.rs turns the page into modules; how a
//! block is compiled is said in an HTML comment just before it (invisible on the rendered page):
//!
//! - no comment: the block is a file of its own (its own `use` lines), module `line_<N>`, N
//!   being the line of its opening fence;
//! - `<!-- doccheck: module=NAME -->`: the same, named NAME so later blocks can refer to it;
//! - `<!-- doccheck: in=NAME -->`: the block is added to module NAME (a test module of an
//!   earlier example, say);
//! - `<!-- doccheck: uses=NAME,... imports="path::A; path::B" -->`: the block is items that
//!   assume the SDK's prelude, the named modules' items and these imports;
//! - `<!-- doccheck: body given="x: T, ..." returns="Result<Action>" uses=... imports=... -->`:
//!   the block is statements, compiled as the body of a function with those parameters
//!   (`returns` defaults to `Result<()>`; the function then returns `Ok(Default::default())`).
//!
//! A compile error points into the generated file (`target/.../out/sdk_rust_md.rs`), where each
//! module starts with the line of docs/sdk-rust.md it came from.
include!(concat!(env!("OUT_DIR"), "/sdk_rust_md.rs"));
