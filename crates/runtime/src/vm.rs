pub struct Vm {}
