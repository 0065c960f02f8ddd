# cka.mk — the paper's Figure 2: linear CKA between every block of two
# supervised teachers trained from different seeds (sl1, sl2), and of a
# supervised and the self-supervised teacher (sl1, ssl), by layer-cka(1)
# on the same test images.
#
#   make cka    $(CKA_DIR)/sl1-sl2.tsv, sl1-ssl.tsv (layer_a, layer_b, cka)
#               and fig2.png / fig2.svg (one heat map per pair)
#   make cka CKA_PAIRS="sl1-ssl ssl-ssl" CKA_DATA=fashion-mnist:test,n=512
#
# A pair is A-B, each a name whose checkpoint is CKA_CKPT_<name>; the
# defaults are the teachers shipped in data/teachers/. CKA_FLAGS goes to
# layer-cka (e.g. --repr cls, --estimator biased, --batch 128).
# Time: a few seconds per pair for the teachers on 2,048 images.

CKA_DIR   ?= runs/cka
CKA_DATA  ?= fashion-mnist:test,n=2048
CKA_PAIRS ?= sl1-sl2 sl1-ssl
CKA_FLAGS ?=
CKA_CKPT_sl1 ?= data/teachers/sl1.safetensors
CKA_CKPT_sl2 ?= data/teachers/sl2.safetensors
CKA_CKPT_ssl ?= data/teachers/ssl.safetensors

.PHONY: cka
cka: $(CKA_DIR)/fig2.png
	@for p in $(CKA_PAIRS); do echo "$(CKA_DIR)/$$p.tsv"; done

cka_a = $(CKA_CKPT_$(word 1,$(subst -, ,$(1))))
cka_b = $(CKA_CKPT_$(word 2,$(subst -, ,$(1))))
define CKA_PAIR
$(CKA_DIR)/$(1).tsv: $(call cka_a,$(1)) $(call cka_b,$(1)) | $(BIN)/layer-cka
	@mkdir -p $(CKA_DIR)
	$(BIN)/layer-cka -a $(call cka_a,$(1)) -b $(call cka_b,$(1)) --data $(CKA_DATA) $(CKA_FLAGS) -o $$@
endef
$(foreach p,$(CKA_PAIRS),$(eval $(call CKA_PAIR,$(p))))

$(CKA_DIR)/fig2.png: $(CKA_PAIRS:%=$(CKA_DIR)/%.tsv) pipelines/fig2.gp
	@if command -v gnuplot >/dev/null; then \
	    gnuplot -e "dir='$(CKA_DIR)'; pairs='$(CKA_PAIRS)'; out='$(CKA_DIR)/fig2'" pipelines/fig2.gp; \
	else echo "gnuplot missing (apt-get install gnuplot-nox): no figure"; touch $@; fi
