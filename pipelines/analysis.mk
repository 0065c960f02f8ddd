# analysis.mk — the paper's analyses of what the two kinds of teacher learnt
# (docs/analysis.md), on the teachers shipped in data/teachers/:
#
#   make cka        Figure 2: linear CKA between every block of two models
#                   (layer-cka(1)): $(ANALYSIS_DIR)/cka-A-B.tsv per pair
#                   (layer_a, layer_b, cka) and fig2.png / fig2.svg, one heat
#                   map per pair
#   make pred-pref  §5.1 / Figure 5: prediction preference of two models
#                   (pred-pref(1)) from their vit-fwd logits on test:
#                   $(ANALYSIS_DIR)/pref-A-B.tsv per pair (per class: top-1 of
#                   each, how often each predicts it, the images only one
#                   gets right) and pref-A-B.txt (totals, 95 % intervals,
#                   McNemar's test)
#   make attn-maps  Figure 1: where each head of blocks ATTN_HEADS looks
#                   (attn-map(1)): $(ANALYSIS_DIR)/attn-M.tsv per model (the
#                   class token's attention share on the object against the
#                   object's area, per head) and attn-M.png (maps of the
#                   first ATTN_N test images)
#
#   make cka CKA_PAIRS="sl1-ssl ssl-ssl" CKA_DATA=fashion-mnist:test,n=512
#
# A pair is A-B, each a name whose checkpoint is ANALYSIS_CKPT_<name>; the
# defaults compare two supervised teachers trained from different seeds
# (sl1-sl2) with a supervised and the self-supervised one (sl1-ssl,
# sl2-ssl). CKA_FLAGS goes to layer-cka (--repr cls, --estimator biased,
# --batch 128). pred-pref needs classifiers (the SSL teacher ships with its
# linear probe). Time: about 20 s of CPU per CKA pair on 2,048 images; a
# teacher's logits on the 10,000 test images ~20 s on the idle machine
# (514 img/s, README).

ANALYSIS_DIR ?= runs/analysis
CKA_DATA     ?= fashion-mnist:test,n=2048
CKA_PAIRS    ?= sl1-sl2 sl1-ssl sl2-ssl
CKA_FLAGS    ?=
PREF_DATA    ?= fashion-mnist:test
PREF_PAIRS   ?= sl1-sl2 sl1-ssl sl2-ssl
ATTN_MODELS  ?= sl1 sl2 ssl
ATTN_DATA    ?= fashion-mnist:test,n=2000
ATTN_HEADS   ?= 3,4,5
ATTN_N       ?= 8
ANALYSIS_CKPT_sl1 ?= data/teachers/sl1.safetensors
ANALYSIS_CKPT_sl2 ?= data/teachers/sl2.safetensors
ANALYSIS_CKPT_ssl ?= data/teachers/ssl.safetensors

.PHONY: cka pred-pref attn-maps
cka: $(ANALYSIS_DIR)/fig2.png
	@for p in $(CKA_PAIRS); do echo "$(ANALYSIS_DIR)/cka-$$p.tsv"; done
pred-pref: $(PREF_PAIRS:%=$(ANALYSIS_DIR)/pref-%.tsv)
	@for p in $(PREF_PAIRS); do echo "== $$p"; cat $(ANALYSIS_DIR)/pref-$$p.txt; done

an_a = $(word 1,$(subst -, ,$(1)))
an_b = $(word 2,$(subst -, ,$(1)))
an_ckpt = $(ANALYSIS_CKPT_$(1))

define CKA_PAIR
$(ANALYSIS_DIR)/cka-$(1).tsv: $(call an_ckpt,$(call an_a,$(1))) $(call an_ckpt,$(call an_b,$(1))) | $(BIN)/layer-cka
	@mkdir -p $(ANALYSIS_DIR)
	$(BIN)/layer-cka -a $(call an_ckpt,$(call an_a,$(1))) -b $(call an_ckpt,$(call an_b,$(1))) \
	    --data $(CKA_DATA) $(CKA_FLAGS) -o $$@
endef
$(foreach p,$(CKA_PAIRS),$(eval $(call CKA_PAIR,$(p))))

$(ANALYSIS_DIR)/fig2.png: $(CKA_PAIRS:%=$(ANALYSIS_DIR)/cka-%.tsv) pipelines/fig2.gp
	@if command -v gnuplot >/dev/null; then \
	    gnuplot -e "dir='$(ANALYSIS_DIR)'; pairs='$(CKA_PAIRS)'; out='$(ANALYSIS_DIR)/fig2'" pipelines/fig2.gp; \
	else echo "gnuplot missing (apt-get install gnuplot-nox): no figure"; touch $@; fi

# each model's logits once, for every pair it is in
PREF_MODELS := $(sort $(foreach p,$(PREF_PAIRS),$(call an_a,$(p)) $(call an_b,$(p))))
define PREF_LOGITS
$(ANALYSIS_DIR)/logits-$(1).sts: $(call an_ckpt,$(1)) | $(BIN)/vit-fwd
	@mkdir -p $(ANALYSIS_DIR)
	$(BIN)/vit-fwd --model $(call an_ckpt,$(1)) --data $(PREF_DATA) -o $$@ >/dev/null
endef
$(foreach m,$(PREF_MODELS),$(eval $(call PREF_LOGITS,$(m))))

define PREF_PAIR
$(ANALYSIS_DIR)/pref-$(1).tsv: $(ANALYSIS_DIR)/logits-$(call an_a,$(1)).sts $(ANALYSIS_DIR)/logits-$(call an_b,$(1)).sts \
    | $(BIN)/pred-pref
	$(BIN)/pred-pref -o $$@ $$^ 2>$(ANALYSIS_DIR)/pref-$(1).txt || { cat $(ANALYSIS_DIR)/pref-$(1).txt; exit 1; }
endef
$(foreach p,$(PREF_PAIRS),$(eval $(call PREF_PAIR,$(p))))

define ATTN_MODEL
$(ANALYSIS_DIR)/attn-$(1).tsv: $(call an_ckpt,$(1)) | $(BIN)/attn-map
	@mkdir -p $(ANALYSIS_DIR)
	$(BIN)/attn-map --model $(call an_ckpt,$(1)) --data $(ATTN_DATA) --heads $(ATTN_HEADS) \
	    --sheet $(ANALYSIS_DIR)/attn-$(1).png -n $(ATTN_N) -o $$@
endef
$(foreach m,$(ATTN_MODELS),$(eval $(call ATTN_MODEL,$(m))))
attn-maps: $(ATTN_MODELS:%=$(ANALYSIS_DIR)/attn-%.tsv)
	@for m in $(ATTN_MODELS); do echo "$(ANALYSIS_DIR)/attn-$$m.tsv $(ANALYSIS_DIR)/attn-$$m.png"; done
