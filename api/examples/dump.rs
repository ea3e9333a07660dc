fn main() {
    for crd in metallb_api::crd::all() {
        println!("=== {}", metallb_api::crd::file_name(&crd));
        print!("{}", metallb_api::crd::to_yaml(&crd));
    }
}
