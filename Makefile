# Conveniences over ./run, which does the real work (and sets up .venv on first use).
.PHONY: demo test lint ci lock
demo: ; ./run demo
test: ; ./run test
lint: ; ./run lint
ci: ; bash .ci/run
lock: ; ./run lock
