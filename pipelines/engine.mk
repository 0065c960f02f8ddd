# engine.mk — the reference Fashion-MNIST student run of docs/engine.md
# (full training set, 25 epochs, evaluated on the test split), and the
# engine's benchmark.
#
#   make student                    (about 40 min on 2 idle cores)
#   make student STUDENT=runs/s2 STUDENT_SEED=2
# Interrupted, `make student` resumes from the last epoch's checkpoint.

STUDENT        ?= runs/fmnist-student
STUDENT_EPOCHS ?= 25
STUDENT_SEED   ?= 1

.PHONY: student
student: $(STUDENT)/test-report.tsv
	@cat $(STUDENT)/student.tsv
	@cat $(STUDENT)/test-report.tsv

$(STUDENT)/student.st: $(BIN)/distill-step
	@mkdir -p $(STUDENT)
	$(BIN)/distill-step --train fashion-mnist:train --val fashion-mnist:val --preset fmnist-student \
	    --epochs $(STUDENT_EPOCHS) --batch 128 --lr 1e-3 --min-lr 1e-5 --wd 0.05 --warmup 2 \
	    --smoothing 0.1 --drop-path 0 --seed $(STUDENT_SEED) --threads 2 \
	    -o $@ --log $(STUDENT)/student.tsv >/dev/null

$(STUDENT)/test-report.tsv: $(STUDENT)/student.st $(BIN)/vit-fwd
	$(BIN)/vit-fwd --model $< --data fashion-mnist:test --eval-only --report $@
