# robust.mk — corruption robustness (the paper's Table 5: mCE per model) and
# shape bias (its section 5.2, as a plot) for any list of checkpoints.
#
#   make robust       $(ROBUST_DIR)/table5.tsv: clean error, mean corruption
#                     error, mCE and relative mCE of every model, normalised
#                     by the baseline model's errors (docs/robustness.md);
#                     ce-by-corruption.tsv: each model's CE per corruption;
#                     intervals.tsv: 95 % paired bootstrap intervals of each
#                     model's clean error, mCE and relative mCE and of every
#                     pair's differences (mce-eval --intervals over the
#                     per-image outcomes raw/NAME.outcomes.st)
#   make shape-bias   $(ROBUST_DIR)/shape-bias.tsv and shape-bias.png
#
# ROBUST_MODELS names the rows; each NAME needs ROBUST_CKPT_NAME, its
# checkpoint, and the models in ROBUST_TEACHERS are drawn as teachers. The
# defaults are the paper's rows: both SL teachers and the SSL teacher with
# its linear probe as shipped in data/teachers/, and the baseline, 2SL and
# SSTA students (with early stop, seed 1) of `make reproduce-table2`'s quick
# preset, so `make robust` runs after the main job as it is. Any list works,
# for example
#   make robust shape-bias ROBUST_MODELS="a b" ROBUST_CKPT_a=a.st \
#        ROBUST_CKPT_b=b.st ROBUST_BASELINE=a ROBUST_TEACHERS=
# ROBUST_BASELINE must be one of ROBUST_MODELS: its mCE is 100 by
# definition. Extra options: MCE_FLAGS for mce-eval (e.g. --severities 1,3,5),
# SHAPE_FLAGS for shape-bias (e.g. --per-pair 50); ROBUST_BOOT resamples
# (default 1000) and ROBUST_BOOT_SEED for the intervals.
# Time: mce-eval runs 76 passes over ROBUST_DATA, on 2 idle cores about
# 1,270 images/s for a 96/6/3 student and 510 for a 192/6/6 teacher: on
# the whole fashion-mnist:test (760,000 images) ~10 min a student and
# ~25 min a teacher, 1 h 45 min for the default six models;
# ROBUST_DATA=fashion-mnist:test,per-class=200 (2,000 images) is 5 times
# quicker (docs/robustness.md, section 5).

ROBUST_DIR      ?= runs/robust
ROBUST_DATA     ?= fashion-mnist:test
ROBUST_MODELS   ?= sl1 sl2 ssl baseline 2sl ssta
ROBUST_TEACHERS ?= sl1 sl2 ssl
ROBUST_BASELINE ?= baseline
ROBUST_CKPT_sl1      ?= data/teachers/sl1.safetensors
ROBUST_CKPT_sl2      ?= data/teachers/sl2.safetensors
ROBUST_CKPT_ssl      ?= data/teachers/ssl.safetensors
ROBUST_CKPT_baseline ?= results/quick/runs/baseline/s1/student.st
ROBUST_CKPT_2sl      ?= results/quick/runs/2SL_KD_early/s1/student.st
ROBUST_CKPT_ssta     ?= results/quick/runs/SSTA_KD_early/s1/student.st
MCE_FLAGS   ?=
SHAPE_FLAGS ?=
ROBUST_BOOT      ?= 1000
ROBUST_BOOT_SEED ?= 0

.PHONY: robust shape-bias
robust: $(ROBUST_DIR)/table5.tsv $(ROBUST_DIR)/ce-by-corruption.tsv $(ROBUST_DIR)/intervals.tsv
	@cat $(ROBUST_DIR)/table5.tsv $(ROBUST_DIR)/intervals.tsv

shape-bias: $(ROBUST_DIR)/shape-bias.png
	@cat $(ROBUST_DIR)/shape-bias.tsv

# Per model: the raw errors (no baseline) with the per-image outcomes (one
# run writes both), and the shape-bias row.
define robust_model
$(ROBUST_DIR)/raw/$(1).tsv $(ROBUST_DIR)/raw/$(1).outcomes.st &: $(ROBUST_CKPT_$(1)) $(BIN)/mce-eval
	@test -n '$(ROBUST_CKPT_$(1))' || { echo "robust.mk: set ROBUST_CKPT_$(1), the checkpoint of model $(1)" >&2; exit 2; }
	@mkdir -p $(ROBUST_DIR)/raw
	$(BIN)/mce-eval --model '$(ROBUST_CKPT_$(1))' --label $(1) --data '$(ROBUST_DATA)' $(MCE_FLAGS) \
	    --outcomes $(ROBUST_DIR)/raw/$(1).outcomes.st -o $(ROBUST_DIR)/raw/$(1).tsv
$(ROBUST_DIR)/shape/$(1).tsv: $(ROBUST_CKPT_$(1)) $(BIN)/shape-bias
	@test -n '$(ROBUST_CKPT_$(1))' || { echo "robust.mk: set ROBUST_CKPT_$(1), the checkpoint of model $(1)" >&2; exit 2; }
	@mkdir -p $$(@D)
	$(BIN)/shape-bias --model '$(ROBUST_CKPT_$(1))' --label $(1) $(SHAPE_FLAGS) -o $$@
endef
$(foreach m,$(sort $(ROBUST_MODELS) $(ROBUST_BASELINE)),$(eval $(call robust_model,$(m))))

# CE and relative CE against the baseline's raw errors, and the tables:
# cheap, so remade at every run (the baseline or the list may have changed).
define robust_score
$(ROBUST_DIR)/mce/$(1).tsv: $(ROBUST_DIR)/raw/$(1).tsv $(ROBUST_DIR)/raw/$(ROBUST_BASELINE).tsv $(BIN)/mce-eval robust-force
	@mkdir -p $$(@D)
	@$(BIN)/mce-eval --rescore $$< --baseline $(ROBUST_DIR)/raw/$(ROBUST_BASELINE).tsv -o $$@
endef
$(foreach m,$(ROBUST_MODELS),$(eval $(call robust_score,$(m))))
.PHONY: robust-force
robust-force:

# Paired bootstrap intervals: the baseline first, then the other models;
# a few seconds, so remade at every run as well.
robust_others = $(filter-out $(ROBUST_BASELINE),$(ROBUST_MODELS))
$(ROBUST_DIR)/intervals.tsv: $(patsubst %,$(ROBUST_DIR)/raw/%.outcomes.st,$(sort $(ROBUST_MODELS) $(ROBUST_BASELINE))) \
                             $(BIN)/mce-eval robust-force
	@$(BIN)/mce-eval --intervals --bootstrap $(ROBUST_BOOT) --seed $(ROBUST_BOOT_SEED) -o $@ \
	    $(ROBUST_DIR)/raw/$(ROBUST_BASELINE).outcomes.st $(robust_others:%=$(ROBUST_DIR)/raw/%.outcomes.st)

# group: teacher or student (ROBUST_TEACHERS)
robust_group = $(if $(filter $(1),$(ROBUST_TEACHERS)),teacher,student)

$(ROBUST_DIR)/table5.tsv: $(ROBUST_MODELS:%=$(ROBUST_DIR)/mce/%.tsv) robust-force
	@printf 'model\tgroup\tclean_err\tmean_err\tmCE\trel_mCE\n' >$@.tmp
	@$(foreach m,$(ROBUST_MODELS),awk -F'\t' -v g=$(call robust_group,$(m)) \
	    '$$2 == "clean" {c = $$6} $$2 == "all" && $$3 == "mean" {print $$1 "\t" g "\t" c "\t" $$6 "\t" $$7 "\t" $$8}' \
	    $(ROBUST_DIR)/mce/$(m).tsv >>$@.tmp &&) mv $@.tmp $@

$(ROBUST_DIR)/ce-by-corruption.tsv: $(ROBUST_MODELS:%=$(ROBUST_DIR)/mce/%.tsv) robust-force
	@awk -F'\t' '$$3 == "mean" && $$2 != "all" { if (!($$2 in seen)) { seen[$$2] = 1; cols[++nc] = $$2 } \
	        if (!($$1 in row)) { row[$$1] = 1; rows[++nr] = $$1 } ce[$$1, $$2] = $$7 } \
	    END { printf "model"; for (j = 1; j <= nc; j++) printf "\t%s", cols[j]; printf "\n"; \
	          for (i = 1; i <= nr; i++) { printf "%s", rows[i]; for (j = 1; j <= nc; j++) printf "\t%s", ce[rows[i], cols[j]]; printf "\n" } }' \
	    $(ROBUST_MODELS:%=$(ROBUST_DIR)/mce/%.tsv) >$@.tmp && mv $@.tmp $@

$(ROBUST_DIR)/shape-bias.tsv: $(ROBUST_MODELS:%=$(ROBUST_DIR)/shape/%.tsv) robust-force
	@printf 'model\tgroup\tn\tshape\ttexture\tother\tshape_bias\tshape_only_acc\ttexture_only_acc\tchance\tstatus\n' >$@.tmp
	@$(foreach m,$(ROBUST_MODELS),awk -F'\t' -v OFS='\t' -v g=$(call robust_group,$(m)) \
	    'NR == 2 {$$2 = g; print}' $(ROBUST_DIR)/shape/$(m).tsv >>$@.tmp &&) mv $@.tmp $@

$(ROBUST_DIR)/shape-bias.png: $(ROBUST_DIR)/shape-bias.tsv pipelines/shape-bias.gp
	@command -v gnuplot >/dev/null || { echo "robust.mk: gnuplot is missing (apt-get install gnuplot-nox)" >&2; exit 1; }
	gnuplot -e "in='$<'; out='$@.tmp.png'" pipelines/shape-bias.gp && mv $@.tmp.png $@
