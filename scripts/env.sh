# Sourced by the scripts: puts the CUDA toolkit's nvcc on PATH when it is installed but not found,
# so the dtfm::cuda component and the nvcc header tests are configured wherever CUDA exists.
if ! command -v nvcc >/dev/null 2>&1; then
    for dir in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
        if [ -x "$dir/nvcc" ]; then
            export PATH="$dir:$PATH"
            break
        fi
    done
fi
