# Thin aliases over cargo; the README says what each does.
.PHONY: run all test lint loom ci

LESSON ?= race-condition

run:
	cargo run -p $(LESSON)

all:
	cargo xtask all

test:
	cargo test --workspace

lint:
	cargo fmt --all -- --check
	rustfmt --edition 2024 --check crates/*/src/standalone.rs
	cargo clippy --workspace --all-targets -- -D warnings
	cargo xtask tidy

loom:
	cargo xtask loom

ci:
	bash .ci/run
