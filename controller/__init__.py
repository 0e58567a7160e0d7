"""os-ken (Ryu) applications that program halab's Open vSwitch switches."""
