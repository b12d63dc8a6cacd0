// Faults while ./train writes its files: killed mid-checkpoint, the disk full, an unwritable --out,
// Ctrl-C twice. Each must end with a whole checkpoint that --resume accepts (the newest one or the one
// before), or with the one-line error before any work is done.
//
// The runs are started with fork and exec (not through a shell pipe) so that the test knows the
// trainer's pid and can signal it at the moment it chooses: when the checkpoint's temporary file
// appears in the folder, i.e. in the middle of a save.
#include <catch2/catch.hpp>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "../../trainer/checkpoint.h"
#include "../../trainer/files.h"
#include "test_util.h"

using namespace train;
using Catch::Matchers::Contains;

namespace {

// Wide enough that a checkpoint takes a while to write, so that a kill lands inside a save.
const std::string kWide = " --n-layer 2 --n-head 2 --n-embd 192 --seq-len 16 --batch-size 2 --threads 1 --sample-every 0";
// Continuing such a run (the checkpoint decides the model and the settings).
const std::string kResume = " --resume --threads 1 --sample-every 0";

// Starts `./train args` (a shell string, run by sh -c with exec, so the pid is the trainer's) with its
// output thrown away; the pid.
pid_t start_train(const std::string& args) {
    REQUIRE(access(TRAIN_BINARY, X_OK) == 0);
    const std::string command = std::string("exec ") + TRAIN_BINARY + " " + args + " >/dev/null 2>&1";
    pid_t pid = fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        execl("/bin/sh", "sh", "-c", command.c_str(), (char*)nullptr);
        _exit(127);
    }
    return pid;
}

// Waits for the process; its exit code, or 128 + the signal that ended it.
int wait_for(pid_t pid) {
    int status = 0;
    REQUIRE(waitpid(pid, &status, 0) == pid);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

// True once the folder holds the process's checkpoint temporary file (model.ckpt.tmp.<pid>): its save
// is under way.
bool saving(const std::string& dir, pid_t pid) {
    return access((dir + "/model.ckpt.tmp." + std::to_string((long)pid)).c_str(), F_OK) == 0;
}

// The checkpoint temporary files in a folder, of any process.
int temp_files(const std::string& dir) {
    int n = 0;
    for (const std::string& name : list_dir(dir)) n += name.rfind("model.ckpt.tmp.", 0) == 0;
    return n;
}

// Polls until a save starts (or the process ends, or 60 s pass); true if it saw one.
bool wait_for_save(pid_t pid, const std::string& dir) {
    for (int i = 0; i < 600000; ++i) {
        if (saving(dir, pid)) return true;
        if (waitpid(pid, nullptr, WNOHANG) == pid) return false;  // reaped: the caller must not wait again
        std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
    return false;
}

// The step a checkpoint holds; fails the test if the file is not a whole, valid checkpoint.
int64_t checkpoint_step(const std::string& path) {
    int64_t step = -1;
    CHECK_NOTHROW(step = CheckpointReader(path).info().step);
    return step;
}

// The run in dir resumes from its checkpoint and trains one more step.
void check_resumable(const std::string& dir) {
    const int64_t step = checkpoint_step(dir + "/model.ckpt");
    Result r = run_train("--resume --steps " + std::to_string(step + 1) + " --out " + dir);
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(checkpoint_step(dir + "/model.ckpt") == step + 1);
}

}  // namespace

TEST_CASE("faults: SIGKILL in the middle of a checkpoint leaves the previous one whole and resumable",
          "[cli][faults]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    const std::string run = dir / "run", args = "-i " + dir / "text.txt" + kWide;
    Result first = run_train(args + " --steps 1 --eval-every 0 --out " + run);
    INFO(first.output);
    REQUIRE(first.status == 0);
    // Kill a resumed run that saves after every step at once when a save starts, then after
    // 1, 2, 4, ... ms into it: each time, model.ckpt is the old checkpoint or the new one, never a mix.
    int killed_mid_save = 0;
    for (int delay_us : {0, 1000, 2000, 4000, 8000, 16000}) {
        const int64_t before = checkpoint_step(run + "/model.ckpt");
        pid_t pid = start_train(kResume + " --steps 40 --eval-every 1 --eval-batches 1 --out " + run);
        const bool saw = wait_for_save(pid, run);
        if (saw) {
            std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
            killed_mid_save += saving(run, pid);
            kill(pid, SIGKILL);
            CHECK(wait_for(pid) == 128 + SIGKILL);
        }
        const int64_t after = checkpoint_step(run + "/model.ckpt");
        CHECK(after >= before);
        CHECK(after <= before + 1);  // killed during the first save: the old step or the new one
        // a killed writer's temporary file is all it leaves, and the next save removes it
        CHECK(temp_files(run) <= 1);
    }
    INFO("kills that landed inside a save: " << killed_mid_save);
    CHECK(killed_mid_save > 0);  // the polling saw the temporary file, so the kill came inside a save
    check_resumable(run);
    CHECK(temp_files(run) == 0);
}

TEST_CASE("faults: a full disk (file size limit) is the one-line error, and the old checkpoint is kept",
          "[cli][faults]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    const std::string run = dir / "run", args = "-i " + dir / "text.txt" + kWide + " --eval-every 0";
    Result first = run_train(args + " --steps 1 --out " + run);
    INFO(first.output);
    REQUIRE(first.status == 0);
    const std::string old = read_file(run + "/model.ckpt");
    // ulimit -f (in 512-byte blocks) below the checkpoint's size: its write fails with EFBIG, as on a
    // full disk, and works for any user (a small tmpfs or /dev/full under --out need root or tricks).
    const std::string limit = "ulimit -f " + std::to_string(old.size() / 512 / 2) + " && ";
    Result r = run_command(limit + TRAIN_BINARY + kResume + " --steps 3 --out " + run);
    INFO(r.output);  // the steps ran (a full disk shows only when the save comes), then the error
    CHECK(r.status == 1);
    CHECK_THAT(r.output, Catch::Matchers::EndsWith("\nerror: cannot write '" + run + "/model.ckpt': File too large\n"));
    CHECK(r.output.find("error:") == r.output.rfind("error:"));  // one error line
    CHECK(read_file(run + "/model.ckpt") == old);
    CHECK(temp_files(run) == 0);  // the temporary file is removed
    check_resumable(run);
}

TEST_CASE("faults: an unwritable --out is refused before training starts", "[cli][faults]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    const std::string args = "-i " + dir / "text.txt" + kTiny + " --steps 3";
    // A folder that cannot exist because a file has its parent's name: refused even for root.
    write_text(dir / "file", "x");
    Result below_file = run_train(args + " --out " + dir / "file/out");
    expect_error(below_file, dir / "file/out");  // one line, before the config table and any step
    CHECK_THAT(below_file.output, !Contains("step"));

    // A read-only folder; root writes into it regardless, so this part needs another user.
    if (geteuid() == 0) {
        WARN("running as root: a read-only --out does not stop root, so that case is skipped");
        return;
    }
    const std::string ro = dir / "ro";
    REQUIRE(mkdir(ro.c_str(), 0555) == 0);
    Result read_only = run_train(args + " --out " + ro);
    expect_error(read_only, "cannot write '" + ro + "/log.csv': Permission denied");
    CHECK_THAT(read_only.output, !Contains("step"));
}

TEST_CASE("faults: Ctrl-C twice still leaves a valid checkpoint", "[cli][faults]") {
    TempDir dir;
    write_text(dir / "text.txt", little_text());
    const std::string run = dir / "run", args = "-i " + dir / "text.txt" + kWide + " --eval-every 0";

    // A fresh run: the first Ctrl-C asks it to save and stop, the second comes while it saves. The
    // save finishes: there is a checkpoint, though the run had none before.
    pid_t pid = start_train(args + " --steps 100000 --out " + run);
    for (int i = 0; i < 12000 && access((run + "/log.csv").c_str(), F_OK) != 0; ++i)  // written just before training
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    REQUIRE(access((run + "/log.csv").c_str(), F_OK) == 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // a step or so
    kill(pid, SIGINT);
    if (wait_for_save(pid, run)) {
        kill(pid, SIGINT);
        CHECK(wait_for(pid) == 130);  // the run's own exit code after Ctrl-C
    }
    const int64_t step = checkpoint_step(run + "/model.ckpt");
    CHECK(step >= 1);

    // Two Ctrl-Cs in quick succession, whenever they land: a whole checkpoint, the old one or newer.
    for (int gap_ms : {0, 1, 5}) {
        const int64_t before = checkpoint_step(run + "/model.ckpt");
        pid = start_train(kResume + " --eval-every 0 --steps 100000 --out " + run);
        std::this_thread::sleep_for(std::chrono::milliseconds(400));
        kill(pid, SIGINT);
        std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms));
        kill(pid, SIGINT);
        const int status = wait_for(pid);
        CHECK((status == 130 || status == 128 + SIGINT));
        CHECK(checkpoint_step(run + "/model.ckpt") >= before);
    }
    check_resumable(run);
}
