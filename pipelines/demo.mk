# demo.mk — the quickest useful run: a small student ViT trained for two
# epochs on Fashion-MNIST, evaluated on the test split, with the attention of
# its last block written as a tensor stream and listed.
#
#   make demo                 (about 5 minutes on 2 cores)
#   make demo DEMO=runs/x DEMO_EPOCHS=5

DEMO        ?= runs/demo
DEMO_EPOCHS ?= 2

.PHONY: demo
demo: $(DEMO)/test-report.tsv
	@echo "--- training log ($(DEMO)/student.tsv)"; cat $(DEMO)/student.tsv
	@echo "--- test accuracy ($(DEMO)/test-report.tsv)"; cat $(DEMO)/test-report.tsv
	@echo "--- first records of $(DEMO)/test.sts.zst"; $(BIN)/sts ls $(DEMO)/test.sts.zst | head -n 8

$(DEMO)/student.safetensors: $(BINS)
	@mkdir -p $(DEMO)
	$(BIN)/distill-step --preset fmnist-student --train fashion-mnist:train \
	    --val fashion-mnist:val --epochs $(DEMO_EPOCHS) --warmup 1 --seed 1 \
	    -o $@ --log $(DEMO)/student.tsv >/dev/null

$(DEMO)/test-report.tsv: $(DEMO)/student.safetensors
	$(BIN)/vit-fwd --model $< --data fashion-mnist:test --attn 5 \
	    -o $(DEMO)/test.sts.zst --report $@
