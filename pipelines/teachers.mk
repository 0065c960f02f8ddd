# teachers.mk — the teachers of the Table 2 pipeline, trained from scratch:
# two supervised 192/6/6 ViTs (seeds 1 and 2: the SL teacher and the second
# SL teacher of the 2SL rows) and the self-supervised DINO teacher with its
# linear probe (the SSL rows). Each is exported without optimizer state,
# with its command, source commit, seed and accuracies in its metadata, as
# the project ships them in data/teachers/ (see data/teachers/README.md).
#
#   make -j2 teachers              all three (the SL pair first: ~1 h; then DINO
#                                  on both cores ~2 h 50 min on a Zen 5 VM, 4 h 20 min
#                                  before the AVX-512 product; data/teachers/README.md)
#   make -j2 teachers-sl           the two supervised ones (about 1 h, a core each)
#   make teachers TEACHERS_OUT=runs/t2
# Interrupted, `make teachers` resumes each run from its last epoch.

TEACHERS_OUT ?= runs/teachers
SL_EPOCHS   ?= 6
SL_ARGS      = --preset fmnist-teacher --train fashion-mnist:train --val fashion-mnist:val \
               --epochs $(SL_EPOCHS) --batch 128 --lr 1e-3 --min-lr 1e-5 --wd 0.05 --warmup 0.5 \
               --smoothing 0.1 --drop-path 0.1 --threads 1
COMMIT       = $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)

.PHONY: teachers teachers-sl
teachers: teachers-sl $(TEACHERS_OUT)/ssl.safetensors
teachers-sl: $(TEACHERS_OUT)/sl1.safetensors $(TEACHERS_OUT)/sl2.safetensors

# Supervised teachers: one thread each, so `make -j2 teachers-sl` trains
# both at once at full speed (two single-threaded processes use the two
# cores best on this machine). --threads is part of the result: the shipped
# files were made with --threads 1.
#
# A training run writes its checkpoint after every epoch, so the checkpoint
# cannot be the target: make would take a half-trained run for a finished
# one and export it. The target is a stamp touched when the trainer exits 0
# (every epoch done); after an interruption the same command resumes from
# the checkpoint's last epoch (see pipelines/dino.mk, pipelines/engine.mk).
.PRECIOUS: $(TEACHERS_OUT)/sl%.trained $(TEACHERS_OUT)/sl%.val.tsv $(TEACHERS_OUT)/sl%.test.tsv
$(TEACHERS_OUT)/sl%.trained: | $(BIN)/distill-step
	@mkdir -p $(TEACHERS_OUT)
	$(BIN)/distill-step $(SL_ARGS) --seed $* -o $(TEACHERS_OUT)/sl$*.st --log $(TEACHERS_OUT)/sl$*.tsv >/dev/null
	@touch $@

# Each teacher's val and test top-1, for its metadata (one recipe makes both:
# a pattern rule's targets, and &: below, are made together).
$(TEACHERS_OUT)/sl%.val.tsv $(TEACHERS_OUT)/sl%.test.tsv: $(TEACHERS_OUT)/sl%.trained $(BIN)/vit-fwd
	$(BIN)/vit-fwd --model $(TEACHERS_OUT)/sl$*.st --data fashion-mnist:val --eval-only --report $(TEACHERS_OUT)/sl$*.val.tsv 2>/dev/null
	$(BIN)/vit-fwd --model $(TEACHERS_OUT)/sl$*.st --data fashion-mnist:test --eval-only --report $(TEACHERS_OUT)/sl$*.test.tsv 2>/dev/null

$(TEACHERS_OUT)/sl%.safetensors: $(TEACHERS_OUT)/sl%.val.tsv $(TEACHERS_OUT)/sl%.test.tsv $(BIN)/ssta-ckpt
	$(BIN)/ssta-ckpt export $(TEACHERS_OUT)/sl$*.st -o $@ \
	    --set "ssta.command=distill-step $(SL_ARGS) --seed $*" --set ssta.commit=$(COMMIT) \
	    --set ssta.role=supervised-teacher \
	    --set ssta.val_acc=$$(awk -F'\t' 'NR==2{print $$3}' $(TEACHERS_OUT)/sl$*.val.tsv) \
	    --set ssta.test_acc=$$(awk -F'\t' 'NR==2{print $$3}' $(TEACHERS_OUT)/sl$*.test.tsv)

# The self-supervised teacher: the DINO backbone of pipelines/dino.mk with its
# logistic-regression probe (linear-probe), exported as one file (backbone +
# head.*), the form head-rank and attn-dump take. Long: see docs/dino.md.
$(TEACHERS_OUT)/ssl.val.tsv $(TEACHERS_OUT)/ssl.test.tsv &: $(DINO)/lprobe.safetensors $(BIN)/vit-fwd
	@mkdir -p $(TEACHERS_OUT)
	$(BIN)/vit-fwd --model $(DINO)/lprobe.safetensors --data fashion-mnist:val --eval-only --report $(TEACHERS_OUT)/ssl.val.tsv 2>/dev/null
	$(BIN)/vit-fwd --model $(DINO)/lprobe.safetensors --data fashion-mnist:test --eval-only --report $(TEACHERS_OUT)/ssl.test.tsv 2>/dev/null

$(TEACHERS_OUT)/ssl.safetensors: $(TEACHERS_OUT)/ssl.val.tsv $(TEACHERS_OUT)/ssl.test.tsv $(DINO)/knn-test.tsv $(BIN)/ssta-ckpt
	$(BIN)/ssta-ckpt export $(DINO)/lprobe.safetensors -o $@ --set "ssta.command=make dino-teacher DINO=$(DINO) DINO_EPOCHS=$(DINO_EPOCHS)$(if $(DINO_STOP), DINO_STOP=$(DINO_STOP))$(if $(DINO_INIT), DINO_INIT=$(DINO_INIT)) DINO_LR=$(DINO_LR) DINO_PRESET=$(DINO_PRESET) DINO_THREADS=$(DINO_THREADS)" \
	    --set ssta.commit=$(COMMIT) --set ssta.role=self-supervised-teacher --set ssta.dino_epochs=$(DINO_EPOCHS) $(if $(DINO_STOP),--set ssta.dino_stop=$(DINO_STOP) )\
	    --set ssta.val_acc=$$(awk -F'\t' 'NR==2{print $$3}' $(TEACHERS_OUT)/ssl.val.tsv) \
	    --set ssta.test_acc=$$(awk -F'\t' 'NR==2{print $$3}' $(TEACHERS_OUT)/ssl.test.tsv) \
	    --set ssta.knn_test=$$(awk -F'\t' 'NR==2{print $$6}' $(DINO)/knn-test.tsv) \
	    --set "ssta.knn_protocol=knn_test: class token, cosine, k 20, T 0.07, fashion-mnist:test against the whole fashion-mnist:train (vit-fwd --knn; raw pixels 0.8431)"
