# Sourced by the bench scripts: `install_binaries DIR [EXAMPLE ...]` builds the release binary
# and the named examples and puts copies of them in DIR/bin, so that rebuilding during a long
# run does not swap the binaries under it. Each copy replaces the old file by a rename, which
# works while another run still executes the old one (a plain cp fails: "Text file busy").
install_binaries() {
  local dir=$1; shift
  local examples=() files=(target/release/cryomotion) name
  for name in "$@"; do
    examples+=(--example "$name")
    files+=("target/release/examples/$name")
  done
  cargo build --release --locked -q
  [ ${#examples[@]} -eq 0 ] || cargo build --release --locked -q "${examples[@]}"
  mkdir -p "$dir/bin"
  for name in "${files[@]}"; do
    cp "$name" "$dir/bin/.$(basename "$name").new"
    mv -f "$dir/bin/.$(basename "$name").new" "$dir/bin/$(basename "$name")"
  done
}
