# artlens: everyday entry points. Variables below can be overridden: make extract MODEL=ViT-B-16 PRETRAINED=random
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
ARTLENS := $(BIN)/artlens

MODEL      ?= ViT-B-32
PRETRAINED ?= openai
SAMPLE     ?= data/sample
SHARDS     ?= $(SAMPLE)/shards
STORE      ?= artstore
TABLE      ?= sample
SAMPLE_N   ?= 240
BATCH      ?= 64
DEVICE     ?= auto
EXTRACT_FLAGS ?=
SUITE      ?= default
EXAMPLES   ?= 4
PERTURB_FLAGS ?=
Q          ?= SELECT * FROM catalog
K          ?= 10
REPORT     ?= $(STORE)/report
SHARED     ?= ../shared/data
FINDINGS_STORE ?= build/findings-store
FINDINGS   ?= docs/findings/ai-pastiche-nga
PAINTINGS  ?= $(SHARED)/paintings
PAINTINGS_SHARDS ?= build/paintings-shards
PAINTINGS_STORE  ?= build/paintings-store
PAINTINGS_WORK   ?= build/paintings-work
PAINTINGS_DOCS   ?= docs/findings/paintings
PAINTINGS_SEED   ?= 0
PAINTINGS_GUIDE_TEXT ?= a cubist painting
PAINTINGS_SHEET_WIDTH ?= 760
PAINTINGS_TITLE  ?= The 14 paintings in ../shared/data/paintings under deformations and guidance: \
	random-init ViT-B-32 (seed $(PAINTINGS_SEED)), no pretrained weights
BENCH_N    ?= 1000000
BENCH_DIM  ?= 768

.PHONY: install test test-fast mutants sample extract perturb index sql neighbors probes report findings \
	findings-paintings bench bench-store bench-probes bench-explorer bench-explorer-browser clean-store

# Idempotent: the stamp is rebuilt only when the dependency files change.
install: $(VENV)/.installed

# The explorer's scatter renderer: deck.gl's standalone bundle from the npm registry (explorer/web's committed
# package-lock.json), copied into explorer/static/vendor/ (git-ignored); nothing is downloaded at run time.
$(VENV)/.installed: pyproject.toml constraints.txt explorer/web/package-lock.json
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -c constraints.txt torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	cd explorer/web && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	mkdir -p explorer/static/vendor
	cp explorer/web/node_modules/deck.gl/dist.min.js explorer/static/vendor/deck.min.js
	touch $@

# Two workers (pytest-xdist) on the 2-core CI machine; the tests on the shared data share one (tests/conftest.py).
TEST_WORKERS ?= 2
test: install
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

test-fast: install
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup -m "not slow"

# The curated mutations of tests/mutants/mutations.yaml, each in a scratch copy under build/mutants/ (the
# working tree is never edited): prints which the tests killed (docs/testing.md). Not part of make test.
# make mutants MUTANTS_FLAGS="--only linear-ignores-group"   (--list, --keep, --timeout S)
MUTANTS_FLAGS ?=
mutants: install
	$(BIN)/python tests/mutants/harness.py $(MUTANTS_FLAGS)

# A few shards of procedurally drawn paintings, made by pipeline/sample (no committed images).
sample: $(SHARDS)/manifest.json

$(SHARDS)/manifest.json: | install
	$(ARTLENS) sample --out $(SHARDS) --n $(SAMPLE_N)

extract: sample
	$(ARTLENS) extract --shards $(SHARDS) --model $(MODEL) --pretrained $(PRETRAINED) \
		--store $(STORE) --table $(TABLE) --batch-size $(BATCH) --device $(DEVICE) $(EXTRACT_FLAGS)

# The table's paintings under the deformation suite (after make extract) → $(TABLE)_deformed, with contact
# sheets of $(EXAMPLES) paintings in $(STORE)/results/examples/
perturb: install
	$(ARTLENS) perturb --shards $(SHARDS) --store $(STORE) --table $(TABLE) --suite $(SUITE) \
		--batch-size $(BATCH) --device $(DEVICE) --save-examples $(EXAMPLES) $(PERTURB_FLAGS)

index: install
	$(ARTLENS) index --store $(STORE) --table $(TABLE)

sql: install
	$(ARTLENS) sql --store $(STORE) "$(Q)"

# make neighbors KEY=sample-00007   or   make neighbors TEXT="a pointillist seascape"   (WHERE="style = 'wash'")
neighbors: install
	$(ARTLENS) neighbors --store $(STORE) --table $(TABLE) -k $(K) \
		$(if $(KEY),--key "$(KEY)",$(if $(TEXT),--text "$(TEXT)",$(error give KEY=... or TEXT=...))) \
		$(if $(WHERE),--where "$(WHERE)")

# The default probe suite on the sample store (after make extract), then the report
probes: install
	$(ARTLENS) texts --store $(STORE) --table sample_style_prompts --prompts sample-style \
		--model $(MODEL) --pretrained $(PRETRAINED) --for-table $(TABLE) --overwrite
	$(ARTLENS) probe run probes/suites/sample.yaml --store $(STORE)

report: install
	$(ARTLENS) report --store $(STORE) --out $(REPORT)
	@echo "open $(REPORT)/index.html"

# docs/findings/ai-pastiche-nga from the real CLIP embeddings in ../shared/data (regenerates the docs)
findings: install
	rm -rf $(FINDINGS_STORE)
	$(ARTLENS) import $(SHARED)/ai-pastiche-nga/ai_pastiche.parquet --store $(FINDINGS_STORE) --table ai_pastiche \
		--embedding-column "ViT-L/14@336px" --key-column generated_image --model-name "OpenAI CLIP ViT-L/14@336px"
	$(ARTLENS) import $(SHARED)/ai-pastiche-nga/ngd.parquet --store $(FINDINGS_STORE) --table ngd \
		--embedding-column "ViT-L/14@336px" --key-column objectid --model-name "OpenAI CLIP ViT-L/14@336px"
	$(ARTLENS) dedup --store $(FINDINGS_STORE) --table ai_pastiche --threshold 0.95
	$(ARTLENS) dedup --store $(FINDINGS_STORE) --table ngd --threshold 0.95
	$(ARTLENS) probe run probes/suites/findings-ai-pastiche-nga.yaml --store $(FINDINGS_STORE)
	$(ARTLENS) report --store $(FINDINGS_STORE) --out $(FINDINGS) \
		--title "AI-Pastiche vs National Gallery: what CLIP ViT-L/14@336px sees"

# docs/findings/paintings from the 14 real paintings in ../shared/data/paintings, embedded by a RANDOM-INIT
# ViT-B-32 (seed PAINTINGS_SEED): no pretrained weights exist offline. Everything is rebuilt from scratch under
# build/ (3-5 minutes on 2 CPU cores, longer under load). The report deletes its figures/*.png, so the contact
# sheets (downscaled to JPEG), saliency maps and one guided example are copied in after it.
findings-paintings: install
	rm -rf $(PAINTINGS_SHARDS) $(PAINTINGS_STORE) $(PAINTINGS_WORK)
	$(ARTLENS) shards $(PAINTINGS) --out $(PAINTINGS_SHARDS) --no-progress
	$(ARTLENS) extract --shards $(PAINTINGS_SHARDS) --store $(PAINTINGS_STORE) --table paintings \
		--model ViT-B-32 --pretrained random --seed $(PAINTINGS_SEED) --device cpu --workers 1 --no-progress
	$(ARTLENS) perturb --shards $(PAINTINGS_SHARDS) --store $(PAINTINGS_STORE) --table paintings \
		--suite default --save-examples 2 --device cpu --no-progress
	$(ARTLENS) probe deformation --store $(PAINTINGS_STORE) --table paintings
	$(ARTLENS) saliency --image $(PAINTINGS)/van-gogh_the-starry-night_1889.jpg \
		--text "a starry night sky over a village" --store $(PAINTINGS_STORE) --table paintings --device cpu \
		--out $(PAINTINGS_WORK)/saliency/starry-night--night-sky.png
	$(ARTLENS) saliency --image $(PAINTINGS)/van-gogh_the-starry-night_1889.jpg \
		--text "a portrait of a woman in a hat" --store $(PAINTINGS_STORE) --table paintings --device cpu \
		--out $(PAINTINGS_WORK)/saliency/starry-night--woman-in-hat.png
	$(ARTLENS) saliency --image $(PAINTINGS)/matisse_woman-with-a-hat_1905.jpg \
		--text "a portrait of a woman in a hat" --store $(PAINTINGS_STORE) --table paintings --device cpu \
		--out $(PAINTINGS_WORK)/saliency/woman-with-a-hat--woman-in-hat.png
	$(ARTLENS) saliency --image $(PAINTINGS)/matisse_woman-with-a-hat_1905.jpg \
		--text "a starry night sky over a village" --store $(PAINTINGS_STORE) --table paintings --device cpu \
		--out $(PAINTINGS_WORK)/saliency/woman-with-a-hat--night-sky.png
	$(ARTLENS) guide --image $(PAINTINGS) --text "$(PAINTINGS_GUIDE_TEXT)" --steps 10 \
		--store $(PAINTINGS_STORE) --table paintings --device cpu --out $(PAINTINGS_WORK)/guide
	$(ARTLENS) report --store $(PAINTINGS_STORE) --out $(PAINTINGS_DOCS) \
		--title "$(PAINTINGS_TITLE)"
	rm -f $(PAINTINGS_DOCS)/figures/contact-*.jpg $(PAINTINGS_DOCS)/figures/saliency-*
	for f in $(PAINTINGS_STORE)/results/examples/paintings_deformed/*.png; do \
		$(BIN)/python -c "import sys; from PIL import Image; im = Image.open(sys.argv[1]).convert('RGB'); \
w = int(sys.argv[3]); h = round(im.height * w / im.width); \
im.resize((w, h), Image.LANCZOS).save(sys.argv[2], quality=90)" \
			$$f $(PAINTINGS_DOCS)/figures/contact-$$(basename $$f .png).jpg $(PAINTINGS_SHEET_WIDTH) || exit 1; \
	done
	for f in $(PAINTINGS_WORK)/saliency/*; do \
		cp $$f $(PAINTINGS_DOCS)/figures/saliency-$$(basename $$f) || exit 1; \
	done
	for f in before after difference; do \
		cp $(PAINTINGS_WORK)/guide/13-van-gogh_the-starry-night_1889/$$f.png \
			$(PAINTINGS_DOCS)/figures/guide-starry-night-$$f.png || exit 1; \
	done

# Indexes and SQL on BENCH_N synthetic clustered vectors: prints a table, writes bench-out/bench-store.json
bench-store: install
	$(BIN)/python -m benchmarks.store_indexes --n $(BENCH_N) --dim $(BENCH_DIM) --out bench-out/bench-store.json

# Each probe of the default suite on synthetic tables of BENCH_PROBES_ROWS rows, kNN beside plain FAISS exact
# search: prints a table, writes build/bench-probes.json
BENCH_PROBES_ROWS ?= 20000,100000
bench-probes: install
	$(BIN)/python -m benchmarks.probes --rows $(BENCH_PROBES_ROWS) --out build/bench-probes.json

# The explorer on a 100,000-row synthetic table: map data (first and cached), neighbour search, cached thumbnail
bench-explorer: install
	$(BIN)/python -m benchmarks.explorer

# The map of a 1,000,000-row table in Debian's chromium (frames while panning and hovering; SwiftShader without a GPU).
bench-explorer-browser: install
	$(BIN)/python -m benchmarks.explorer_browser

clean-store:
	rm -rf $(STORE)

# Extraction throughput (CUDA: 20,000 JPEGs, ViT-B-32, ViT-L-14, ViT-L-14-336, ViT-B-16; BENCH_FLAGS=--small on a CPU machine):
# prints a table, writes bench-out/bench.json
BENCH_FLAGS ?=
bench: install
	$(BIN)/python -m benchmarks.extraction $(BENCH_FLAGS) --out bench-out/bench.json
