# table2.mk — `make reproduce-table2`: the paper's Table 2 (11 rows) and the
# two extra rows of its Table 3, at the scale of this machine.
#
#   make reproduce-table2                     quick preset, shipped teachers
#   make reproduce-table2 SEEDS="1 2 3"       every row over three seeds
#   make reproduce-table2 SEEDS="1 2 3" ROWS="baseline SSTA_KD_early"
#                                             only those rows
#   make reproduce-table2 PRESET=full         the whole training split, 3 seeds
#   make reproduce-table2 TEACHERS=retrain    train the teachers first (make teachers)
#   make reproduce-table2 -j2                 safe (each run uses both cores anyway)
#
# The chain, each step a file target with its real inputs:
#   teachers (data/teachers/*.safetensors, SHA-256 checked)
#   -> head ranks      R/rank/T.tsv            (head-rank on the val subset)
#   -> selections      R/rank/T.{imp,avg,rand} (head-rank --select)
#   -> caches          R/cache/sS/T-SEL.sts    (attn-dump: the student's views)
#   -> student runs    R/runs/ROW/sS/{student.st,train.tsv,test.tsv}
#   -> tables          R/table2.{tsv,md}, R/curves.tsv, R/fig4.{png,svg}
# with R = results/PRESET. An interrupted make resumes where it stopped (a
# student run resumes from its last epoch's checkpoint). The rows are
# pipelines/table2-rows.tsv, turned into rules by one template (T2_ROW).
#
# Presets (see README for the times measured on this machine):
#   quick  8,000 training images (800 per class), 9 epochs, KD stopped after 3,
#          head ranking on 1,000 val images; one seed unless SEEDS is given
#   full   the whole 54,000-image training split, 30 epochs, KD stopped after
#          10, head ranking on the 6,000 val images; seeds 1 2 3
#   toy    a few hundred images, 3 epochs of 2 steps: the CI test of the chain
#          (tests/cli/table2_toy.sh), with teachers it trains itself

PRESET   ?= quick
TEACHERS ?= shipped
R        ?= results/$(PRESET)

ifeq ($(PRESET),quick)
  T2_TRAIN   ?= fashion-mnist:train,per-class=800
  T2_VAL     ?= fashion-mnist:val,per-class=100
  T2_RANK    ?= fashion-mnist:val,per-class=100
  T2_EPOCHS  ?= 9
  T2_KDSTOP  ?= 3
  SEEDS      ?= 1
  T2_STEPS   ?= 0
else ifeq ($(PRESET),full)
  T2_TRAIN   ?= fashion-mnist:train
  T2_VAL     ?= fashion-mnist:val
  T2_RANK    ?= fashion-mnist:val
  T2_EPOCHS  ?= 30
  T2_KDSTOP  ?= 10
  SEEDS      ?= 1 2 3
  T2_STEPS   ?= 0
else ifeq ($(PRESET),toy)
  T2_TRAIN   ?= fashion-mnist:train,n=120
  T2_VAL     ?= fashion-mnist:val,n=40
  T2_RANK    ?= fashion-mnist:val,n=60
  T2_EPOCHS  ?= 3
  T2_KDSTOP  ?= 1
  SEEDS      ?= 1
  T2_STEPS   ?= 2
  T2_BATCH   ?= 20
  T2_STUDENT ?= --img 28 --patch 7 --chans 1 --dim 24 --depth 3 --heads 3
  T2_LAYERS  ?= 1,2
  T2_TEST    ?= fashion-mnist:test,n=50
else
  $(error PRESET=$(PRESET): quick, full or toy)
endif
T2_BATCH   ?= 128
T2_STEPS_OPT = $(if $(filter-out 0,$(T2_STEPS)),--steps-per-epoch $(T2_STEPS))
T2_STUDENT ?= --preset fmnist-student
T2_LAYERS  ?= last
T2_TEST    ?= fashion-mnist:test
T2_THREADS ?= 2
T2_RAND_SEED ?= 1
# The student's recipe (the reference student of docs/engine.md, shorter).
T2_RECIPE  ?= --lr 1e-3 --min-lr 1e-5 --wd 0.05 --warmup 1 --smoothing 0.1 --drop-path 0.1
T2_KD      ?= --kd-dir ts
# Caches: sqrt31 at zstd level 9, 1.84 KB per view for 3 layers of 50x50
# maps, KL(T||S) gradient within 3-4 % of the exact maps' (docs/kd.md).
T2_CACHE_ENC ?= sqrt31
T2_CACHE_LEVEL ?= 9

# What a teacher's outputs (ranks, caches, the rows that use it) depend on,
# as a pattern over the teacher's name: a stamp of its checked sum for the
# shipped files (changed only when that teacher's sum changes, so replacing
# one teacher reruns only what uses it), the file itself otherwise.
ifeq ($(TEACHERS),shipped)
  TEACHER_DIR := data/teachers
  T2_TPAT = $(R)/teachers/%.ok
else ifeq ($(TEACHERS),retrain)
  TEACHERS_OUT ?= runs/teachers
  TEACHER_DIR := $(TEACHERS_OUT)
  T2_TPAT = $(TEACHER_DIR)/%.safetensors
else
  # TEACHERS=given: the three files are already in TEACHER_DIR (tests)
  T2_TPAT = $(TEACHER_DIR)/%.safetensors
endif
# $(call t2_tdep,TEACHER ...): those teachers' dependencies ('-' = none)
t2_tdep = $(foreach t,$(filter-out -,$(1)),$(subst %,$(t),$(T2_TPAT)))

T2_ROWS_TSV := pipelines/table2-rows.tsv
T2_ALLROWS  := $(shell awk -F'\t' 'NR>1{print $$1}' $(T2_ROWS_TSV))
# ROWS="baseline SSTA_KD_early": only those rows (e.g. more seeds for the
# headline comparison); the table then lists those rows and the claims
# between them.
ROWS       ?=
T2_ROWS     := $(if $(strip $(ROWS)),$(ROWS),$(T2_ALLROWS))
$(if $(filter-out $(T2_ALLROWS),$(T2_ROWS)),$(error ROWS: no such row: $(filter-out $(T2_ALLROWS),$(T2_ROWS)) (rows: $(T2_ALLROWS))))
# $(call t2col,ROW,COLUMN): a field of the rows file
t2col = $(shell awk -F'\t' -v r='$(1)' 'NR==1{for(i=1;i<=NF;i++)c[$$i]=i} NR>1&&$$1==r{print $$c["$(2)"]}' $(T2_ROWS_TSV))
# this make's start (for the progress lines' elapsed time and estimate)
T2_START   := $(shell date +%s)
T2_PROGRESS = sh pipelines/progress.sh $(R) $(T2_START) "$(T2_ROWS)" "$(SEEDS)"

.PHONY: reproduce-table2 table2-teachers
reproduce-table2: $(R)/table2.md $(R)/fig4.png $(if $(filter shipped,$(TEACHERS)),| t2-teachers-check)
	@cat $(R)/table2.md
	@echo "(tables: $(R)/table2.tsv $(R)/table2.md; figure: $(R)/fig4.png $(R)/fig4.svg)"

# ---------------------------------------------------------------- teachers

# A shipped teacher's stamp holds its line of SHA256SUMS; it is remade when
# the file's time changes and rewritten (its dependents rerun) only when
# that line changed. Every make checks all the sums first.
.PHONY: t2-teachers-check
t2-teachers-check:
	@cd data/teachers && sha256sum --quiet -c SHA256SUMS
$(R)/teachers/%.ok: data/teachers/%.safetensors | t2-teachers-check
	@mkdir -p $(@D)
	@grep '  $*.safetensors$$' data/teachers/SHA256SUMS >$@.tmp || { rm -f $@.tmp; \
	    echo "data/teachers/SHA256SUMS has no sum for $*.safetensors" >&2; exit 1; }
	@if cmp -s $@.tmp $@; then rm $@.tmp; else mv $@.tmp $@; fi

# ---------------------------------------------------------------- head ranks

$(R)/rank/%.tsv: $(T2_TPAT) | $(BIN)/head-rank
	@mkdir -p $(R)/rank
	$(BIN)/head-rank --model $(TEACHER_DIR)/$*.safetensors --data $(T2_RANK) --layers $(T2_LAYERS) \
	    --threads $(T2_THREADS) -o $@ 2>$(R)/rank/$*.log || { cat $(R)/rank/$*.log; exit 1; }
	@sed -n '$$p' $(R)/rank/$*.log
.PRECIOUS: $(R)/rank/%.tsv
$(R)/rank/%.imp: $(R)/rank/%.tsv
	$(BIN)/head-rank --select imp --from $< >$@.tmp && mv $@.tmp $@
$(R)/rank/%.avg: $(T2_TPAT) | $(BIN)/head-rank
	@mkdir -p $(R)/rank
	$(BIN)/head-rank --select avg --model $(TEACHER_DIR)/$*.safetensors --layers $(T2_LAYERS) >$@.tmp && mv $@.tmp $@
$(R)/rank/%.rand: $(T2_TPAT) | $(BIN)/head-rank
	@mkdir -p $(R)/rank
	$(BIN)/head-rank --select rand --seed $(T2_RAND_SEED) --model $(TEACHER_DIR)/$*.safetensors \
	    --layers $(T2_LAYERS) >$@.tmp && mv $@.tmp $@

# ---------------------------------------------------------------- caches

# $(call T2_CACHE,SEED,TEACHER,SEL): the teacher's selected heads on the
# student's views of seed SEED; imp caches cover every epoch (the rows
# without early stop read them all), avg and rand only the KD epochs.
define T2_CACHE
$(R)/cache/s$(1)/$(2)-$(3).sts: $(R)/rank/$(2).$(3) $(call t2_tdep,$(2)) | $(BIN)/attn-dump
	@mkdir -p $(R)/cache/s$(1)
	$(BIN)/attn-dump --model $(TEACHER_DIR)/$(2).safetensors --select "$$$$(cat $$<)" --train $(T2_TRAIN) \
	    --seed $(1) --batch $(T2_BATCH) $(T2_STEPS_OPT) \
	    --epochs $(if $(filter imp,$(3)),$(T2_EPOCHS),$(T2_KDSTOP)) --encoding $(T2_CACHE_ENC) --level $(T2_CACHE_LEVEL) \
	    --threads $(T2_THREADS) -o $$@ 2>$$@.log || { cat $$@.log; exit 1; }
endef
$(foreach s,$(SEEDS),$(foreach t,sl1 sl2 ssl,$(foreach v,imp avg rand,$(eval $(call T2_CACHE,$(s),$(t),$(v))))))

# ---------------------------------------------------------------- student runs

# What a row's KD terms need: the caches, and its distill-step options.
t2_cache = $(R)/cache/s$(2)/$(1)-$(call t2col,$(3),heads).sts
t2_deps = $(strip \
    $(if $(filter head,$(call t2col,$(1),sl_method)),$(if $(filter-out -,$(call t2col,$(1),teacher0)),$(call t2_cache,$(call t2col,$(1),teacher0),$(2),$(1)))) \
    $(if $(filter-out -,$(call t2col,$(1),teacher1)),$(call t2_cache,$(call t2col,$(1),teacher1),$(2),$(1))))
t2_opts = $(strip \
    $(if $(filter-out -,$(call t2col,$(1),teacher0)),$(if $(filter head,$(call t2col,$(1),sl_method)),--attn-kd sl=$(call t2_cache,$(call t2col,$(1),teacher0),$(2),$(1)) --kd-head sl=0) \
        $(if $(filter logits,$(call t2col,$(1),sl_method)),--logit-kd $(TEACHER_DIR)/$(call t2col,$(1),teacher0).safetensors) \
        $(if $(filter at,$(call t2col,$(1),sl_method)),--at-kd $(TEACHER_DIR)/$(call t2col,$(1),teacher0).safetensors)) \
    $(if $(filter-out -,$(call t2col,$(1),teacher1)),--attn-kd t1=$(call t2_cache,$(call t2col,$(1),teacher1),$(2),$(1)) --kd-head t1=1) \
    $(if $(filter yes,$(call t2col,$(1),early_stop)),--kd-stop $(T2_KDSTOP)) \
    $(if $(filter-out -,$(call t2col,$(1),teacher0) $(call t2col,$(1),teacher1)),$(T2_KD)))

# A row's checkpoint older than one of its caches or teachers was made from
# the old ones: it is removed, so the run starts afresh (distill-step would
# refuse it, its teachers' MD5 differing, or — with a cache gone — take it
# for finished). A run interrupted after its inputs were made is newer than
# them and resumes.
define T2_ROW
$(R)/runs/$(1)/s$(2)/test.tsv: $(call t2_deps,$(1),$(2)) $(call t2_tdep,$(call t2col,$(1),teacher0) $(call t2col,$(1),teacher1)) \
    | $(BIN)/distill-step $(BIN)/vit-fwd
	@mkdir -p $(R)/runs/$(1)/s$(2)
	@for f in $$^; do if [ -f $(R)/runs/$(1)/s$(2)/student.st ] && [ $$$$f -nt $(R)/runs/$(1)/s$(2)/student.st ]; then \
	    echo "$(1) seed $(2): $$$$f is newer than its checkpoint: training afresh"; \
	    rm -f $(R)/runs/$(1)/s$(2)/student.st $(R)/runs/$(1)/s$(2)/train.tsv; fi; done
	$(BIN)/distill-step --train $(T2_TRAIN) --val $(T2_VAL) $(T2_STUDENT) --epochs $(T2_EPOCHS) \
	    --batch $(T2_BATCH) $(T2_STEPS_OPT) --seed $(2) --threads $(T2_THREADS) $(T2_RECIPE) \
	    $(call t2_opts,$(1),$(2)) -o $(R)/runs/$(1)/s$(2)/student.st --log $(R)/runs/$(1)/s$(2)/train.tsv >/dev/null
	$(BIN)/vit-fwd --model $(R)/runs/$(1)/s$(2)/student.st --data $(T2_TEST) --eval-only \
	    --threads $(T2_THREADS) --report $$@ 2>/dev/null
	@$(T2_PROGRESS) "$(1)" $(2) $$@
endef
$(foreach s,$(SEEDS),$(foreach r,$(T2_ROWS),$(eval $(call T2_ROW,$(r),$(s)))))

# ---------------------------------------------------------------- tables

T2_TESTS := $(foreach s,$(SEEDS),$(foreach r,$(T2_ROWS),$(R)/runs/$(r)/s$(s)/test.tsv))
T2_SELS  := $(foreach t,sl1 sl2 ssl,$(foreach v,imp avg rand,$(R)/rank/$(t).$(v)))

# One run of table2.py writes the three: a grouped target (&:), so make -j2
# never runs it twice at once (two writers of the same temporary file).
$(R)/table2.md $(R)/table2.tsv $(R)/curves.tsv &: $(T2_TESTS) $(T2_SELS) pipelines/table2.py $(T2_ROWS_TSV)
	/usr/bin/python3 pipelines/table2.py --rows $(T2_ROWS_TSV) --runs $(R)/runs --seeds "$(SEEDS)" \
	    --heads $(R)/rank --teachers $(TEACHER_DIR) --out $(R) --preset $(PRESET) \
	    $(if $(strip $(ROWS)),--only "$(T2_ROWS)") >/dev/null

$(R)/fig4.png: $(R)/curves.tsv pipelines/fig4.gp
	@if command -v gnuplot >/dev/null; then \
	    gnuplot -e "curves='$(R)/curves.tsv'; out='$(R)/fig4'" pipelines/fig4.gp; \
	else echo "gnuplot missing (apt-get install gnuplot-nox): no figure"; touch $@; fi
