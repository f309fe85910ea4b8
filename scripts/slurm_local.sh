#!/usr/bin/env bash
# A throwaway one-node SLURM cluster with accounting (slurmdbd on MariaDB) on this machine, for running ganbench's
# launcher=slurm and its SLURM tests against a real scheduler. Debian's SLURM 22.05, no systemd, no cgroups: about
# 25 s from a machine without the packages, 2-3 s once they are installed; stop takes 1-2 s (up to 35 s when a running
# job ignores SIGTERM: SLURM's KillWait).
#
#   sudo bash scripts/slurm_local.sh start     # install the Debian packages if missing, start the daemons, wait
#   sudo bash scripts/slurm_local.sh status    # exit 0 when this script's cluster is up, 3 when it is not
#   sudo bash scripts/slurm_local.sh stop      # cancel its jobs, stop what `start` started, remove the files it wrote
#
# The cluster is named ganbench-local (a test can tell it from a developer's real cluster by `scontrol show config`'s
# ClusterName); one partition `cpu` (Default=YES, MaxTime=2 days, a limit as real partitions have) holds this machine
# as its only node. The script never takes over a real cluster: it refuses (one line, exit 2) when
# /etc/slurm/slurm.conf was not written by it, when $SLURM_CONF names another cluster whose controller answers, or when
# SLURM daemons or a MariaDB server it did not start are running. It also refuses when not root or without apt-get.
#
# What it writes, and where:
#   /etc/slurm/slurm.conf, /etc/slurm/slurmdbd.conf   first line "# written by ganbench scripts/slurm_local.sh";
#                                                     written at each start, removed by stop
#   /usr/sbin/policy-rc.d      only while it installs packages, and only when the image has none (an existing one is
#                              used as is when it refuses service starts, never replaced or removed)
#   $STATE (/var/lib/ganbench-slurm, or GANBENCH_SLURM_STATE):
#     installed     packages this script installed (stop leaves them installed)
#     created       what it created outside $STATE: files (removed by stop when they are configs), the accounting
#                   database and its MariaDB user (kept: job ids and accounting survive a stop/start)
#     started       "name pid" of each daemon it started; stop stops exactly these, newest first
#     slurmdbd.pass the accounting user's password; slurmctld/ and slurmd/ (SLURM's state and spool: job ids keep
#                   counting up across restarts, so sacct never mixes two jobs with the same id); run/ (PID files)
#     log/          apt.log and every daemon's log (the install's output is shown only when it fails)
#
# Exit status: 0 done (or already in the state asked for), 1 a failure (the log to read is named), 2 refused,
# 3 status: not up. START_TIMEOUT (seconds, default 90) bounds the wait for the cluster after the daemons start.
set -euo pipefail

readonly CLUSTER=ganbench-local
readonly PARTITION=cpu
readonly HEADER="# written by ganbench scripts/slurm_local.sh"
readonly PACKAGES=(slurmctld slurmd slurm-client munge slurmdbd mariadb-server)
readonly ETC=/etc/slurm
readonly CONF=$ETC/slurm.conf
readonly DBD_CONF=$ETC/slurmdbd.conf
readonly POLICY=/usr/sbin/policy-rc.d
readonly MYSQL_RUN=/run/mysqld
readonly MYSQL_SOCKET=$MYSQL_RUN/mysqld.sock
readonly DB_NAME=slurm_acct_db
readonly DB_USER=slurm
STATE=${GANBENCH_SLURM_STATE:-/var/lib/ganbench-slurm}
readonly STATE
readonly LOG=$STATE/log RUN=$STATE/run
START_TIMEOUT=${START_TIMEOUT:-90}

# The caller's SLURM_CONF may name a real cluster: keep it to check for one, but let every SLURM command this script
# runs read the configuration it writes.
readonly CALLER_SLURM_CONF=${SLURM_CONF:-}
export SLURM_CONF=$CONF
export DEBIAN_FRONTEND=noninteractive LC_ALL=C

say() { echo "slurm_local: $*"; }
fail() { say "$*" >&2; exit 1; }
refuse() { say "refusing: $*" >&2; exit 2; }
now_ms() { local t=${EPOCHREALTIME/[.,]/}; echo $((t / 1000)); }
since() { local ms=$(($(now_ms) - $1)); printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100)); }
is_ours() { [[ -f $1 ]] && [[ $(head -n 1 "$1") == "$HEADER" ]]; }

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "$0"
}

# --- what this script started -------------------------------------------------------------------------------------

# alive NAME PID: PID is a live process whose command is NAME (a PID reused by another program after a reboot or a
# crash does not count, nor does a zombie: PID 1 here is not an init that reaps promptly, so the intermediate
# processes of a daemon's double fork, and a daemon that just exited, linger a few seconds as zombies).
alive() {
  local stat
  [[ -n $2 ]] && stat=$(cat "/proc/$2/stat" 2>/dev/null) || return 1
  [[ $stat == "$2 ($1) "* && ${stat#"$2 ($1) "} != Z* ]]
}

# started_pid NAME: the PID recorded for NAME in $STATE/started when that process is still alive, else nothing.
started_pid() {
  local name pid
  [[ -f $STATE/started ]] || return 0
  while read -r name pid; do
    if [[ $name == "$1" ]] && alive "$name" "$pid"; then echo "$pid"; return 0; fi
  done <"$STATE/started"
}

record_started() { echo "$1 $2" >>"$STATE/started"; }
record_created() { grep -qxF "$1" "$STATE/created" 2>/dev/null || echo "$1" >>"$STATE/created"; }

# --- refusals ----------------------------------------------------------------------------------------------------

# foreign_cluster: prints why another SLURM cluster (or a server this script did not start) is in the way, if one is.
foreign_cluster() {
  local name pid daemon
  if [[ -e $CONF ]] && ! is_ours "$CONF"; then
    name=$(sed -n 's/^[[:space:]]*ClusterName[[:space:]]*=[[:space:]]*\([^[:space:]#]*\).*/\1/Ip' "$CONF" | head -n 1)
    echo "$CONF was not written by this script (ClusterName=${name:-unset}): it configures another SLURM cluster"
    return
  fi
  if [[ -n $CALLER_SLURM_CONF && $CALLER_SLURM_CONF != "$CONF" ]] && command -v scontrol >/dev/null &&
    SLURM_CONF=$CALLER_SLURM_CONF timeout 15 scontrol ping >/dev/null 2>&1; then
    name=$(SLURM_CONF=$CALLER_SLURM_CONF timeout 15 scontrol show config 2>/dev/null |
      sed -n 's/^ClusterName *= *//p')
    if [[ $name != "$CLUSTER" ]]; then
      echo "SLURM_CONF=$CALLER_SLURM_CONF names cluster ${name:-?}, whose controller answers"
      return
    fi
  fi
  for daemon in slurmctld slurmd slurmdbd mariadbd mysqld; do
    for pid in $(pgrep -x "$daemon" || true); do
      if alive "$daemon" "$pid" && [[ $(started_pid "$daemon") != "$pid" ]]; then
        echo "a $daemon (pid $pid) that this script did not start is running"
        return
      fi
    done
  done
}

# --- status --------------------------------------------------------------------------------------------------------

# cluster_up: this script's cluster answers: its slurm.conf, its slurmctld and slurmd alive, the controller answers
# with our cluster name and the node is usable.
cluster_up() {
  is_ours "$CONF" || return 1
  [[ -n $(started_pid slurmctld) && -n $(started_pid slurmd) ]] || return 1
  timeout 15 scontrol ping 2>/dev/null | grep -q 'is UP' || return 1
  [[ $(timeout 15 scontrol show config 2>/dev/null | sed -n 's/^ClusterName *= *//p') == "$CLUSTER" ]] || return 1
  node_ready
}

# node_ready: the partition's node is idle (or running jobs: mixed / allocated / completing).
node_ready() {
  local st
  st=$(timeout 15 sinfo -h -p "$PARTITION" -o %t 2>/dev/null) || return 1
  [[ $st =~ ^(idle|mix|alloc|comp)$ ]]
}

summary() {
  local cpus mem
  read -r cpus mem < <(timeout 15 sinfo -h -p "$PARTITION" -o '%c %m' 2>/dev/null | head -n 1) || true
  echo "partition $PARTITION, ${cpus:-?} CPUs, ${mem:-?} MB"
}

cmd_status() {
  local why
  if cluster_up; then
    say "cluster $CLUSTER up ($(summary), node $(timeout 15 sinfo -h -p "$PARTITION" -o %t))"
    return 0
  fi
  why=$(foreign_cluster)
  say "cluster $CLUSTER not up${why:+ (and $why)}"
  return 3
}

# --- install -------------------------------------------------------------------------------------------------------

installed() { [[ $(dpkg-query -W -f='${Status}' "$1" 2>/dev/null) == "install ok installed" ]]; }

# The packages' postinst scripts start their daemons through invoke-rc.d before any configuration exists; a
# policy-rc.d that exits 101 keeps them off. An image's own policy-rc.d is used when it already refuses (Docker
# images ship one that does), and never replaced or removed; ours exists only for the install.
policy_created=0
remove_policy() { if ((policy_created)) && is_ours "$POLICY"; then rm -f "$POLICY"; fi; }

install_packages() {
  local missing=() p rc=0 started
  for p in "${PACKAGES[@]}"; do installed "$p" || missing+=("$p"); done
  ((${#missing[@]})) || return 0
  command -v apt-get >/dev/null || refuse "no apt-get here to install ${missing[*]}"
  started=$(now_ms)
  say "installing ${missing[*]} (log: $LOG/apt.log)"
  if [[ -e $POLICY ]] && ! is_ours "$POLICY"; then
    rc=0
    "$POLICY" slurmctld start >/dev/null 2>&1 || rc=$?
    ((rc == 101)) || refuse "$POLICY (not this script's) lets package scripts start daemons (exit $rc, not 101);" \
      "install ${missing[*]} yourself, then rerun"
  else
    # absent, or ours left behind by an interrupted install
    printf '#!/bin/sh\n%s (temporary: keeps package scripts from starting daemons)\nexit 101\n' "$HEADER" >"$POLICY"
    chmod 755 "$POLICY"
    policy_created=1
  fi
  rc=0
  {
    echo "== $(date -Is) apt-get update && apt-get install ${missing[*]}"
    apt-get update && apt-get install -y --no-install-recommends "${missing[@]}"
  } >>"$LOG/apt.log" 2>&1 || rc=$?
  remove_policy
  policy_created=0
  if ((rc)); then
    tail -n 20 "$LOG/apt.log" >&2
    fail "package install failed (exit $rc); full log: $LOG/apt.log"
  fi
  printf '%s\n' "${missing[@]}" >>"$STATE/installed"
  say "installed ${#missing[@]} packages in $(since "$started") s"
}

# --- configuration ---------------------------------------------------------------------------------------------------

# write_ours PATH MODE: stdin to PATH (a file this script owns: it checked that PATH is absent or carries its header).
write_ours() {
  [[ ! -e $1 ]] || is_ours "$1" || refuse "$1 exists and was not written by this script"
  [[ -e $1 ]] || record_created "$1"
  { echo "$HEADER"; cat; } >"$1.tmp.$$"
  chmod "$2" "$1.tmp.$$"
  mv -f "$1.tmp.$$" "$1"
}

write_configs() {
  local host node real mem pass
  host=$(hostname -s)
  # The node line as slurmd sees this machine: a bare CPUs=N makes slurmd complain about the socket/core layout.
  # RealMemory leaves 10% headroom, so that a node whose free memory moved a little does not register short and drain.
  node=$(slurmd -C | head -n 1)
  real=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")
  mem=$((real * 9 / 10))
  node=${node/RealMemory=$real/RealMemory=$mem}
  mkdir -p "$ETC"
  write_ours "$CONF" 644 <<EOF
# A one-node cluster for ganbench's tests; start/stop it with scripts/slurm_local.sh, do not edit (rewritten at start).
ClusterName=$CLUSTER
# No DNS needed: container hostnames are often random; everything goes through 127.0.0.1.
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
# A requeued job may start again after 10 s instead of the default credential lifetime (120 s).
AuthInfo=cred_expire=10
CredType=cred/munge
StateSaveLocation=$STATE/slurmctld
SlurmdSpoolDir=$STATE/slurmd
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
SlurmctldLogFile=$LOG/slurmctld.log
SlurmdLogFile=$LOG/slurmd.log
# No cgroups here (PID 1 is not systemd): track processes through /proc, no task binding, no accounting sampling.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
# Plain CPU scheduling; memory is checked against the node's, not consumed.
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# A requeued job becomes eligible cred_expire (10 s) later and is started by the backfill scheduler's next pass: every
# 5 s instead of 30 (measured: a requeued job restarted 21 s after the requeue; 47 s with cred_expire=30 and the
# default bf_interval).
SchedulerParameters=bf_interval=5
MpiDefault=none
MailProg=/bin/true
# Accounting: submitit learns from sacct that a job ended without a result (without it a sweep waits forever).
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobCompType=jobcomp/none
# A job asking for more than the node has is refused at submission instead of pending forever.
EnforcePartLimits=ALL
# Jobs keep the submitter's nice level.
PropagatePrioProcess=1
# After SIGTERM a job has KillWait seconds before SIGKILL; finished jobs stay in squeue for MinJobAge seconds.
KillWait=30
MinJobAge=300
# A node that went down (e.g. slurmd stopped with the cluster) comes back by itself when its slurmd registers.
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=60
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=2-00:00:00 State=UP
EOF
  pass=$(cat "$STATE/slurmdbd.pass")
  # slurmdbd insists on its configuration being readable by SlurmUser only.
  write_ours "$DBD_CONF" 600 <<EOF
AuthType=auth/munge
DbdHost=localhost
DbdAddr=127.0.0.1
SlurmUser=root
PidFile=$RUN/slurmdbd.pid
LogFile=$LOG/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=$DB_NAME
StorageUser=$DB_USER
StoragePass=$pass
EOF
}

# --- daemons -------------------------------------------------------------------------------------------------------

# wait_for SECONDS WHAT COMMAND...: retry COMMAND every 0.2 s until it succeeds; fail naming WHAT after SECONDS.
wait_for() {
  local limit=$1 what=$2 deadline
  shift 2
  deadline=$(($(now_ms) + limit * 1000))
  until "$@" >/dev/null 2>&1; do
    (($(now_ms) < deadline)) || fail "$what did not come up within $limit s (logs: $LOG/)"
    sleep 0.2
  done
}

# pid_from FILE: the PID a daemon wrote, once it has.
pid_from() { [[ -s $1 ]] && tr -dc 0-9 <"$1"; }

start_munged() {
  munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && return 0 # ours or the machine's: either way credentials work
  # munged refuses a log file that its own user does not own.
  touch "$LOG/munged.log"
  chown munge:munge "$LOG/munged.log"
  if [[ ! -s /etc/munge/munge.key ]]; then
    mungekey --create --keyfile=/etc/munge/munge.key >>"$LOG/munged.log" 2>&1
    chown munge:munge /etc/munge/munge.key
    chmod 600 /etc/munge/munge.key
    record_created /etc/munge/munge.key
  fi
  install -d -o munge -g munge -m 755 /run/munge
  rm -f /run/munge/munged.pid
  runuser -u munge -- munged --pid-file=/run/munge/munged.pid --log-file="$LOG/munged.log" 2>>"$LOG/munged.log" 9>&- ||
    fail "munged did not start (log: $LOG/munged.log)"
  wait_for 15 munged pid_from /run/munge/munged.pid
  record_started munged "$(pid_from /run/munge/munged.pid)"
  wait_for 15 munged bash -c 'munge -n | unmunge'
}

mariadb_sql() { mariadb --socket="$MYSQL_SOCKET" -u root -N -B; }

start_mariadb() {
  local pid
  if [[ -z $(started_pid mariadbd) ]]; then
    # The package's postinst initialises /var/lib/mysql; a datadir that lost it is initialised again.
    if [[ ! -d /var/lib/mysql/mysql ]]; then
      mariadb-install-db --user=mysql --datadir=/var/lib/mysql >>"$LOG/mariadb.log" 2>&1 ||
        fail "mariadb-install-db failed (log: $LOG/mariadb.log)"
      record_created /var/lib/mysql/mysql
    fi
    install -d -o mysql -g mysql -m 755 "$MYSQL_RUN"
    touch "$LOG/mariadb.log" && chown mysql:mysql "$LOG/mariadb.log"
    rm -f "$MYSQL_RUN/ganbench.pid"
    # No TCP (--skip-networking): slurmdbd reaches it through the socket. A small buffer pool: it holds a few rows.
    # innodb_lock_wait_timeout=900 is what slurmdbd asks for (it logs a warning otherwise).
    setsid mariadbd --user=mysql --datadir=/var/lib/mysql --socket="$MYSQL_SOCKET" \
      --pid-file="$MYSQL_RUN/ganbench.pid" --skip-networking --innodb-buffer-pool-size=64M \
      --innodb-lock-wait-timeout=900 --log-error="$LOG/mariadb.log" </dev/null >>"$LOG/mariadb.log" 2>&1 9>&- &
    wait_for 60 mariadb pid_from "$MYSQL_RUN/ganbench.pid"
    pid=$(pid_from "$MYSQL_RUN/ganbench.pid")
    record_started mariadbd "$pid"
    wait_for 60 mariadb mariadb-admin --socket="$MYSQL_SOCKET" ping
  fi
  # The accounting database and its user, once; the password is reset to $STATE's at each start (cheap, and it
  # repairs a user left by an earlier state directory).
  if [[ $(echo "SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name='$DB_NAME';" | mariadb_sql) == 0 ]]
  then
    record_created "mariadb database $DB_NAME"
  fi
  if [[ $(echo "SELECT COUNT(*) FROM mysql.user WHERE user='$DB_USER' AND host='localhost';" | mariadb_sql) == 0 ]]
  then
    record_created "mariadb user $DB_USER@localhost"
  fi
  mariadb_sql <<EOF
CREATE DATABASE IF NOT EXISTS $DB_NAME;
CREATE USER IF NOT EXISTS '$DB_USER'@'localhost';
ALTER USER '$DB_USER'@'localhost' IDENTIFIED BY '$(cat "$STATE/slurmdbd.pass")';
GRANT ALL ON $DB_NAME.* TO '$DB_USER'@'localhost';
EOF
}

# start_slurm NAME: a SLURM daemon (each forks and writes the PID file its configuration names), unless ours runs.
start_slurm() {
  local name=$1
  [[ -z $(started_pid "$name") ]] || return 0
  rm -f "$RUN/$name.pid"
  "$name" </dev/null >>"$LOG/$name.log" 2>&1 9>&- || fail "$name did not start (log: $LOG/$name.log)"
  wait_for 30 "$name" pid_from "$RUN/$name.pid"
  record_started "$name" "$(pid_from "$RUN/$name.pid")"
}

dbd_answers() { timeout 10 sacctmgr -n -P list cluster format=cluster; }

add_cluster() {
  wait_for 60 slurmdbd dbd_answers
  if ! dbd_answers | grep -qxF "$CLUSTER"; then
    timeout 30 sacctmgr -i add cluster "$CLUSTER" >>"$LOG/slurmdbd.log" 2>&1 ||
      fail "sacctmgr add cluster $CLUSTER failed (log: $LOG/slurmdbd.log)"
  fi
}

# node_resume_if_down: a node left down or drained by an earlier run (e.g. its slurmd was killed) is put back.
node_resume_if_down() {
  local st
  st=$(timeout 15 sinfo -h -p "$PARTITION" -o %t 2>/dev/null) || return 0
  if [[ $st =~ ^(down|drain|drng|fail)\*?$ ]]; then
    timeout 15 scontrol update nodename="$(hostname -s)" state=resume >/dev/null 2>&1 || true
  fi
}

cluster_ready() {
  timeout 15 scontrol ping | grep -q 'is UP' || return 1
  node_ready || { node_resume_if_down; return 1; }
  timeout 15 sacct -n -X -S now-1minutes -o JobID >/dev/null
}

starting=0
on_exit() {
  local rc=$?
  remove_policy
  if ((starting && rc != 0 && rc != 2)); then
    say "start failed: stopping what it started" >&2
    starting=0
    cmd_stop >&2 || true
  fi
  exit "$rc"
}

cmd_start() {
  local t0 why
  t0=$(now_ms)
  ((EUID == 0)) || refuse "start needs root (it installs packages and starts system daemons)"
  command -v apt-get >/dev/null || refuse "no apt-get here (a Debian-family machine is needed)"
  mkdir -p "$STATE" "$LOG" "$RUN" "$STATE/slurmctld" "$STATE/slurmd"
  chmod 755 "$STATE"  # status works for any user; the password file itself is 0600
  # One start or stop at a time (tests may start the cluster from parallel workers). Every daemon is started with fd 9
  # closed: one that inherited it would hold the lock for as long as it runs.
  exec 9>"$STATE/lock"
  flock -w 300 9 || fail "another slurm_local.sh holds $STATE/lock"
  # Our policy-rc.d left behind by an install that was killed (we hold the lock: no install of ours is running).
  if is_ours "$POLICY"; then rm -f "$POLICY"; fi
  why=$(foreign_cluster)
  [[ -z $why ]] || refuse "$why; this script never takes over a real cluster"
  if cluster_up; then
    say "cluster $CLUSTER already up ($(summary))"
    return 0
  fi
  starting=1
  install_packages
  # The packages just installed may bring a configuration (none in Debian's): check again before writing ours.
  why=$(foreign_cluster)
  [[ -z $why ]] || refuse "$why; this script never takes over a real cluster"
  [[ -s $STATE/slurmdbd.pass ]] || (umask 077 && head -c 24 /dev/urandom | base64 | tr -dc A-Za-z0-9 \
    >"$STATE/slurmdbd.pass")
  write_configs
  say "starting munged, mariadb, slurmdbd, slurmctld, slurmd (logs: $LOG/)"
  start_munged
  start_mariadb
  start_slurm slurmdbd
  add_cluster
  start_slurm slurmctld
  start_slurm slurmd
  wait_for "$START_TIMEOUT" "cluster $CLUSTER (controller, node idle, sacct)" cluster_ready
  starting=0
  say "cluster $CLUSTER up ($(summary)) in $(since "$t0") s"
}

# --- stop ----------------------------------------------------------------------------------------------------------

# stop_pid NAME PID: SIGTERM, then SIGKILL after 30 s.
stop_pid() {
  local name=$1 pid=$2 i
  kill -TERM "$pid" 2>/dev/null || return 0
  for ((i = 0; i < 150; i++)); do
    alive "$name" "$pid" || return 0
    sleep 0.2
  done
  say "$name (pid $pid) ignored SIGTERM for 30 s: SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
}

# cancel_jobs: the jobs still queued or running are cancelled, so that their processes (children of slurmstepd,
# which outlives slurmd) do not outlive the cluster; waits up to KillWait + 10 s.
cancel_jobs() {
  local ids i
  [[ -n $(started_pid slurmctld) ]] && timeout 15 scontrol ping 2>/dev/null | grep -q 'is UP' || return 0
  # squeue without --states lists the jobs that have not ended (pending, running, completing, suspended...).
  ids=$(timeout 15 squeue -h -o %A 2>/dev/null | tr '\n' ' ') || return 0
  [[ -n ${ids// /} ]] || return 0
  # shellcheck disable=SC2086  # one argument per job id
  timeout 15 scancel $ids 2>/dev/null || true
  for ((i = 0; i < 200; i++)); do
    [[ -z $(timeout 15 squeue -h -o %A 2>/dev/null) ]] && return 0
    sleep 0.2
  done
  say "jobs still running after 40 s: $(timeout 15 squeue -h -o '%A %T' | tr '\n' ' ')" >&2
}

cmd_stop() {
  local t0 stopped=() lines=() name pid i
  t0=$(now_ms)
  ((EUID == 0)) || refuse "stop needs root"
  if [[ ! -f $STATE/started ]] || [[ -z $(while read -r name pid; do alive "$name" "$pid" && echo x; done \
    <"$STATE/started") ]]; then
    rm -f "$STATE/started"
    remove_configs
    say "cluster $CLUSTER not running: nothing to stop"
    return 0
  fi
  cancel_jobs
  mapfile -t lines <"$STATE/started"
  for ((i = ${#lines[@]} - 1; i >= 0; i--)); do
    read -r name pid <<<"${lines[i]}"
    if alive "$name" "$pid"; then
      stop_pid "$name" "$pid"
      stopped+=("$name")
    fi
  done
  rm -f "$STATE/started"
  remove_configs
  # slurmstepd outlives slurmd: one left means a job's processes may still run (they were not ours to kill blindly).
  if pgrep -x slurmstepd >/dev/null; then
    say "warning: slurmstepd still running (pids $(pgrep -x slurmstepd | tr '\n' ' ')); its job outlived the cluster" >&2
  fi
  say "cluster $CLUSTER stopped (${stopped[*]}) in $(since "$t0") s"
}

# remove_configs: the configuration files this script wrote (the accounting database, the munge key and the
# packages stay; `created` keeps their lines).
remove_configs() {
  local path
  [[ -f $STATE/created ]] || return 0
  for path in "$CONF" "$DBD_CONF"; do
    if grep -qxF "$path" "$STATE/created" && is_ours "$path"; then
      rm -f "$path"
      sed -i "\\|^$path\$|d" "$STATE/created"
    fi
  done
}

# --- main ----------------------------------------------------------------------------------------------------------

main() {
  case ${1:-} in
    start)
      trap on_exit EXIT
      cmd_start
      ;;
    stop)
      ((EUID == 0)) || refuse "stop needs root"
      [[ -d $STATE ]] || { say "cluster $CLUSTER not running: nothing to stop"; return 0; }
      exec 9>"$STATE/lock"
      flock -w 300 9 || fail "another slurm_local.sh holds $STATE/lock"
      cmd_stop
      ;;
    status) cmd_status ;;
    -h | --help | help) usage ;;
    *)
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
