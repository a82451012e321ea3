# Every target sets up its own .venv on a fresh machine.
# torch is installed first and pinned: a bare `torch` would pull a multi-GB CUDA build.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TORCH_VERSION ?= 2.13.0
STAMP := $(VENV)/.installed

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==$(TORCH_VERSION)
	$(PY) -m pip install -q -e '.[dev]'
	# tinysoundfont declares pyaudio (needs PortAudio headers) but offline rendering does not use it.
	$(PY) -m pip install -q --no-deps tinysoundfont==0.3.7
	# The pinned SoundFont of the built-in corpus ships in the package: check it is there, unchanged.
	$(PY) -c "from pianogan.data.render import find_soundfont; find_soundfont()"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m pianogan.demo --out demo

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) demo build *.egg-info src/*.egg-info
