#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's background threads return freed memory to the OS on a timer. Without them an
/// arena only purges when its own threads allocate again, so the memory of indexing
/// threads that have exited stays resident.
#[allow(non_upper_case_globals)]
#[export_name = "_rjem_malloc_conf"]
pub static malloc_conf: &[u8] = b"background_thread:true\0";

fn main() -> std::process::ExitCode {
    quarry::cli::main()
}
