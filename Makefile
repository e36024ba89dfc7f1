# Two commands for a fresh machine:
#   make quickstart   set up .venv, install Fashion-MNIST, train a convnet teacher, distil a
#                     DeiT⚗ student from it and train its no-teacher twin, print the three
#   make test         set up .venv, lint (ruff) and run the test suite (CI runs exactly this)
# and, for the user's manual in docs/:
#   make docs         build it with mkdocs into site/, strict: a broken link or a page left
#                     out of the navigation fails
# and, for the loader benchmark on real photos (benchmarks/jpeg_loader.py):
#   make photos       install Debian's wallpaper packages and build the two photo sets from
#                     their photographs into data/photos (benchmarks/photo_sets.py)
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
DISTILL := $(VENV)/bin/distill
FMNIST := /usr/share/datasets/fashion-mnist
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: quickstart test install data photos lint docs docs-serve

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# Fashion-MNIST from Debian's package dataset-fashion-mnist, where apt is available.
data:
	@if [ -e $(FMNIST)/train-images-idx3-ubyte.gz ]; then exit 0; fi; \
	if command -v apt-get >/dev/null 2>&1; then \
	  $(SUDO) apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -q >/dev/null 2>&1 && \
	    $(SUDO) apt-get install -y -q dataset-fashion-mnist >/dev/null 2>&1; } || \
	  echo "could not install dataset-fashion-mnist; Fashion-MNIST tests will be skipped"; \
	else echo "no apt-get: put the Fashion-MNIST IDX files somewhere and use --set data.root=DIR"; fi

# The benchmark photo sets: ImageNet-shaped and phone-shaped JPEGs made from the photographs
# in Debian's wallpaper packages (installed with apt where they are not), into data/photos.
PHOTO_PACKAGES := mate-backgrounds plasma-workspace-wallpapers lomiri-wallpapers
photos: install
	@if ! dpkg -s $(PHOTO_PACKAGES) >/dev/null 2>&1; then \
	  if command -v apt-get >/dev/null 2>&1; then \
	    $(SUDO) apt-get install -y -q $(PHOTO_PACKAGES) >/dev/null 2>&1 || \
	    { $(SUDO) apt-get update -q >/dev/null 2>&1 && \
	      $(SUDO) apt-get install -y -q $(PHOTO_PACKAGES) >/dev/null 2>&1; } || \
	    { echo "could not install $(PHOTO_PACKAGES)"; exit 1; }; \
	  else echo "no apt-get: install $(PHOTO_PACKAGES) (Debian, Ubuntu) to build the photo sets"; exit 1; fi; \
	fi
	$(PY) benchmarks/photo_sets.py --out data/photos

quickstart: install data
	$(DISTILL) train recipes/fmnist/teacher_resnet.yaml --resume
	$(DISTILL) train recipes/fmnist/deit_token.yaml --resume
	$(DISTILL) train recipes/fmnist/deit_none.yaml --resume
	$(DISTILL) report runs/fmnist/teacher_resnet runs/fmnist/deit_token runs/fmnist/deit_none

test: install data
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q --durations=15

lint: install
	$(VENV)/bin/ruff check .

$(VENV)/.docs: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev,docs]'
	touch $@

docs: $(VENV)/.docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

docs-serve: $(VENV)/.docs
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve
